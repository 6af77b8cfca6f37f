-- wrk script: /auth for BENCH_NAMES known names (user-1 .. user-N), requests pre-formatted
-- in init() so that the load generator's own cost stays flat.
local n = tonumber(os.getenv("BENCH_NAMES") or "10000")
local header = os.getenv("BENCH_HEADER") or "REMOTE_USER"
local reqs = {}
local i = 0
init = function(args)
  for k = 1, n do reqs[k] = wrk.format("GET", "/auth", { [header] = "user-" .. k }) end
end
request = function()
  i = i % n + 1
  return reqs[i]
end
