"""Time from process start to the first successful answer, on an empty SQLite file.

The answer counted is an authenticated GraphQL query (`{ me { pk } }`) with the bootstrap
token: the file is created, migrated and the superuser bootstrapped before it can succeed.
Usage: startup.py BIN WORKDIR RUNS PORT  -> JSON on stdout.
"""
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

bin_, work, runs, port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
token = "startup" + "x" * 40
body = json.dumps({"query": "{ me { pk } }"})
times = []
rss = []
for r in range(runs):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    env = dict(os.environ, OAUTHLINK_DATABASE_URL=f"sqlite://{work}/oauthlink.sqlite3?mode=rwc",
               OAUTHLINK_LISTEN=f"127.0.0.1:{port}", OAUTHLINK_BOOTSTRAP_TOKEN=token)
    env.pop("OAUTHLINK_SECRET_KEY", None)
    t0 = time.perf_counter()
    p = subprocess.Popen([bin_, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ok = False
    while time.perf_counter() - t0 < 10:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("POST", "/graphql", body, {"Content-Type": "application/json",
                                                 "Authorization": f"Bearer {token}"})
            resp = c.getresponse()
            data = resp.read()
            if resp.status == 200 and b'"pk":1' in data:
                ok = True
                break
        except OSError:
            pass
        time.sleep(0.001)
    t1 = time.perf_counter()
    if ok:
        times.append((t1 - t0) * 1000)
        time.sleep(0.3)
        with open(f"/proc/{p.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss.append(int(line.split()[1]))
    p.terminate()
    p.wait()
shutil.rmtree(work, ignore_errors=True)
print(json.dumps({"runs_ms": [round(t, 1) for t in times], "median_ms": round(statistics.median(times), 1) if times else None,
                  "failed_runs": runs - len(times), "rss_after_start_kib": rss}))
