-- wrk script for bench/run: drives blackbox_exporter's /probe at a fixed total rate (open loop:
-- request k is due at t0 + k / rate, whichever connection is free takes it), cycling through a
-- file of request paths (/probe?module=...&target=...), and tallies what the probes reported.
--
--   BENCH_DRIVER_OUT=summary.json \
--   wrk -t T -c C -d S --timeout 30s -s driver.lua http://127.0.0.1:PORT -- PATHS RATE D_MS T
--
-- PATHS: one path per line; thread j takes lines j, j+T, j+2T ... (so together the threads go
-- through every target in turn). RATE: probes per second over all threads. MEASURE: 1 to tally
-- the latency error of HTTP probes against the injected delay, which bench/targets.c encodes in
-- the body length (content length = 3 + delay ms), 0 not to. T: wrk's -t again.
-- The summary (JSON) goes to $BENCH_DRIVER_OUT.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

-- main state: number the threads
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- thread state
paths = {}
idx = 0
slot = 0
t0 = nil
interval_ms = 1000
-- tallies (read by done() through thread:get)
n_tcp, n_http, n_success, n_fail, n_other = 0, 0, 0, 0, 0
-- per injected delay d (ms), flat (thread:get copies flat tables only): errs["d:n"] samples,
-- errs["d:abs"] sum |err| (probe_duration_seconds), errs["d:phases"] sum |err| (sum of the
-- probe_http_duration_seconds phases), errs["d:sum"] sum err (signed), errs["d:max"] max |err|
errs = {}
measure = false

function init(args)
  local file, rate = args[1], tonumber(args[2])
  measure = args[3] == "1"
  local nthreads = tonumber(args[4])
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == id then table.insert(paths, line) end
    i = i + 1
  end
  -- this thread's share of the rate; its slots are offset so threads interleave
  interval_ms = 1000 * nthreads / rate
  t0 = now_ms() + interval_ms * id / nthreads
end

function request()
  idx = idx % #paths + 1
  return wrk.format("GET", paths[idx])
end

function delay()
  slot = slot + 1
  local wait = t0 + slot * interval_ms - now_ms()
  if wait < 0 then return 0 end
  return wait
end

function response(status, headers, body)
  if status ~= 200 then
    n_other = n_other + 1
    return
  end
  local success = body:match("\nprobe_success (%S+)")
  if not success then
    n_other = n_other + 1
    return
  end
  local http = body:find("probe_http_status_code", 1, true) ~= nil
  if http then n_http = n_http + 1 else n_tcp = n_tcp + 1 end
  if success == "1" then n_success = n_success + 1 else n_fail = n_fail + 1 end
  if measure and http and success == "1" then
    local length = tonumber(body:match("\nprobe_http_content_length (%S+)"))
    local total = tonumber(body:match("\nprobe_duration_seconds (%S+)"))
    if length and total then
      local d = length - 3
      local phases = 0
      for v in body:gmatch('\nprobe_http_duration_seconds{phase="%a+"} (%S+)') do
        phases = phases + tonumber(v)
      end
      local err = total * 1000 - d
      local k = tostring(d) .. ":"
      errs[k .. "n"] = (errs[k .. "n"] or 0) + 1
      errs[k .. "abs"] = (errs[k .. "abs"] or 0) + math.abs(err)
      errs[k .. "phases"] = (errs[k .. "phases"] or 0) + math.abs(phases * 1000 - d)
      errs[k .. "sum"] = (errs[k .. "sum"] or 0) + err
      errs[k .. "max"] = math.max(errs[k .. "max"] or 0, math.abs(err))
    end
  end
end

function done(summary, latency, requests)
  local names = { "n_tcp", "n_http", "n_success", "n_fail", "n_other" }
  local total = {}
  for _, name in ipairs(names) do total[name] = 0 end
  local errs_all = {} -- d -> {n, abs, phases, sum, max}
  local fields = { n = 1, abs = 2, phases = 3, sum = 4 }
  for _, thread in ipairs(threads) do
    for _, name in ipairs(names) do total[name] = total[name] + thread:get(name) end
    for key, v in pairs(thread:get("errs")) do
      local d, field = key:match("^(%d+):(%a+)$")
      local a = errs_all[d]
      if not a then
        a = { 0, 0, 0, 0, 0 }
        errs_all[d] = a
      end
      if field == "max" then
        if v > a[5] then a[5] = v end
      else
        a[fields[field]] = a[fields[field]] + v
      end
    end
  end
  local out = io.open(os.getenv("BENCH_DRIVER_OUT"), "w")
  out:write("{")
  for _, name in ipairs(names) do out:write(string.format('"%s": %d, ', name, total[name])) end
  out:write('"errors_ms": {')
  local first = true
  for d, a in pairs(errs_all) do
    if not first then out:write(", ") end
    first = false
    out:write(string.format('"%s": {"n": %d, "sum_abs": %.6f, "sum_abs_phases": %.6f, ' ..
      '"sum": %.6f, "max_abs": %.6f}', d, a[1], a[2], a[3], a[4], a[5]))
  end
  out:write("}, ")
  out:write(string.format('"requests": %d, "errors_connect": %d, "errors_read": %d, ' ..
    '"errors_write": %d, "errors_status": %d, "errors_timeout": %d, "duration_us": %d, ' ..
    '"latency_p50_us": %d, "latency_p99_us": %d}\n',
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, summary.duration,
    latency:percentile(50), latency:percentile(99)))
  out:close()
end
