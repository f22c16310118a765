"""Sequential creates over one keep-alive connection, a fixed number (for the profiler).
Usage: drive.py BASE_URL graphql|rest TOKEN SOURCES FIRST_USER START COUNT -> JSON summary."""
import http.client
import json
import sys
import time
import urllib.parse

base, api, token, sources, first, start, count = sys.argv[1:8]
sources = sources.split(",")
first, start, count = int(first), int(start), int(count)
u = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
GQL = ("mutation C($input: CreateUserOAuthConnectionInput!) { createUserOAuthConnection(input: $input) "
       "{ pk user identifier created source { pk name slug component verboseName } } }")
ok = bad = 0
t0 = time.perf_counter()
for k in range(count):
    i = 10_000_000 + start + k
    user, source, ident = first + (i // len(sources)) % 40000, sources[i % len(sources)], f"prof-{i}"
    if api == "rest":
        path = "/api/v3/sources/user_connections/oauth/"
        body = {"user": user, "source": source, "identifier": ident, "access_token": "gho_bench"}
    else:
        path = "/graphql"
        body = {"query": GQL, "variables": {"input": {"user": user, "source": source, "identifier": ident,
                                                      "accessToken": "gho_bench"}}}
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {token}"})
    r = conn.getresponse()
    data = r.read()
    if 200 <= r.status < 300 and b'"errors"' not in data:
        ok += 1
    else:
        bad += 1
        if bad <= 3:
            print(r.status, data[:300], file=sys.stderr)
print(json.dumps({"ok": ok, "bad": bad, "seconds": round(time.perf_counter() - t0, 2)}))
