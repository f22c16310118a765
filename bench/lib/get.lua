-- wrk script for read requests (lists): counts non-2xx and GraphQL error bodies, prints p99.9.
threads = {}
non2xx, gql_errors, ok = 0, 0, 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")
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
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + (t:get("ok") or 0)
    b = b + (t:get("non2xx") or 0)
    c = c + (t:get("gql_errors") or 0)
  end
  io.write(string.format("BENCH requests=%d duration_us=%d ok=%d non2xx=%d errors=%d socket_errors=%d p50_us=%d p99_us=%d p999_us=%d max_us=%d\n",
    summary.requests, summary.duration, a, b, c,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
