"""One pgbench cell as a JSON line: tps, latency percentiles from the per-transaction log."""
import glob
import json
import re
import sys

d, conns, rep, rows, load = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
out = open(f"{d}/out.txt").read()
tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
processed = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
m = re.search(r"number of failed transactions: (\d+)", out)
failed = int(m.group(1)) if m else 0
lat = []
for f in glob.glob(f"{d}/tx*"):
    with open(f) as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                lat.append(int(parts[2]))
lat.sort()


def pct(p):
    if not lat:
        return 0
    return lat[min(len(lat) - 1, int(round(p / 100 * len(lat) + 0.5)) - 1)]


print(json.dumps({
    "group": "main", "db": "postgres", "api": "pgbench", "conns": conns, "rep": rep,
    "rps": tps, "requests": processed, "ok": processed - failed, "non2xx": 0, "errors": failed,
    "socket_errors": 0, "p50_us": pct(50), "p99_us": pct(99), "p999_us": pct(99.9),
    "max_us": lat[-1] if lat else 0, "rows": rows, "peak_rss_kib": 0, "load_before": load,
}))
