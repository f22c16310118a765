-- wrk script: every request creates a distinct (user, source, identifier).
-- Environment (read once per wrk thread):
--   BENCH_KIND     graphql | rest | postgraphile
--   BENCH_TOKEN    API key (Bearer), not used by postgraphile
--   BENCH_SOURCES  comma-separated source uuids (10)
--   BENCH_FIRST_USER  pk of the first seeded user
--   BENCH_START    first pair index of this wrk run (pairs never repeat within a run)
-- Pair index i -> user = FIRST_USER + floor(i / nsources), source = sources[i % nsources],
-- identifier = "bench-<i>". Threads take interleaved indexes.
threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads) -- set before init() runs in the thread
  table.insert(threads, thread)
end

local kind, token, sources, first_user, start, nthreads = nil, nil, {}, 0, 0, 1
-- globals: read by done() through thread:get(); n = requests generated (sent) by this thread
tid, n, non2xx, gql_errors, ok = 0, 0, 0, 0, 0

function init(args)
  kind = os.getenv("BENCH_KIND") or "graphql"
  token = os.getenv("BENCH_TOKEN") or ""
  for s in string.gmatch(os.getenv("BENCH_SOURCES") or "", "[^,]+") do
    table.insert(sources, s)
  end
  first_user = tonumber(os.getenv("BENCH_FIRST_USER") or "2")
  start = tonumber(os.getenv("BENCH_START") or "0")
  nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  wrk.headers["Content-Type"] = "application/json"
  if kind ~= "postgraphile" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
  wrk.method = "POST"
  if kind == "rest" then
    wrk.path = "/api/v3/sources/user_connections/oauth/"
  else
    wrk.path = "/graphql"
  end
end

local GQL = 'mutation C($input: CreateUserOAuthConnectionInput!) { createUserOAuthConnection(input: $input) '
  .. '{ pk user identifier created source { pk name slug component verboseName } } }'
local PGL = 'mutation C($input: CreateUserOauthSourceConnectionInput!) { createUserOauthSourceConnection(input: $input) '
  .. '{ userOauthSourceConnection { rowId userId identifier created sourceBySourceId { uuid name slug } } } }'

function request()
  local i = start + tid + n * nthreads
  n = n + 1
  local ns = #sources
  local user = first_user + math.floor(i / ns)
  local source = sources[(i % ns) + 1]
  local ident = "bench-" .. i
  local body
  if kind == "rest" then
    body = string.format('{"user":%d,"source":"%s","identifier":"%s","access_token":"gho_bench"}',
      user, source, ident)
  elseif kind == "graphql" then
    body = string.format('{"query":"%s","variables":{"input":{"user":%d,"source":"%s","identifier":"%s","accessToken":"gho_bench"}}}',
      GQL, user, source, ident)
  else
    body = string.format('{"query":"%s","variables":{"input":{"userOauthSourceConnection":{"userId":%d,"sourceId":"%s","identifier":"%s","accessToken":"Z2hvX2JlbmNo"}}}}',
      PGL, user, source, ident)
  end
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if non2xx <= 3 then io.stderr:write("non-2xx " .. status .. ": " .. string.sub(body, 1, 300) .. "\n") end
  elseif string.find(body, '"errors"', 1, true) then
    gql_errors = gql_errors + 1
    if gql_errors <= 3 then io.stderr:write("error body: " .. string.sub(body, 1, 300) .. "\n") end
  else
    ok = ok + 1
  end
end

function done(summary, latency, requests)
  local a, b, c, sent = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    sent = sent + (t:get("n") or 0)
    a = a + (t:get("ok") or 0)
    b = b + (t:get("non2xx") or 0)
    c = c + (t:get("gql_errors") or 0)
  end
  io.write(string.format("BENCH sent=%d requests=%d duration_us=%d ok=%d non2xx=%d errors=%d socket_errors=%d p50_us=%d p99_us=%d p999_us=%d max_us=%d\n",
    sent, summary.requests, summary.duration, a, b, c,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
