-- wrk script for bench/http/run. The workload comes from the environment:
--   BENCH_WORKLOAD  read | create | update | tx
--   BENCH_PREFIX    path prefix of the FHIR base, e.g. /fhir
--   BENCH_IDS       read: file of "Type/id" lines; update: file of Patient ids
--   BENCH_BODY      create, tx: the request body; update: the Patient JSON
--                   after its leading '{' minus resourceType and id
--   BENCH_THREADS   wrk's -t, so that update threads take disjoint ids
-- done() prints one line "BENCH_RESULT {json}" that run parses.

local workload = os.getenv("BENCH_WORKLOAD") or "read"
local prefix = os.getenv("BENCH_PREFIX") or "/fhir"
local threads = {}
local counter = 0

local function read_file(path)
  local f = assert(io.open(path, "rb"), "cannot open " .. tostring(path))
  local s = f:read("*a")
  f:close()
  return s
end

local function read_lines(path)
  local t = {}
  for line in io.lines(path) do
    if #line > 0 then t[#t + 1] = line end
  end
  return t
end

function setup(thread)
  thread:set("tindex", #threads)
  threads[#threads + 1] = thread
end

local requests = {}
local ids = {}
local body_rest
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")

function init(args)
  math.randomseed(1000 + (tindex or 0) * 7919)
  local json = { ["Content-Type"] = "application/fhir+json" }
  if workload == "read" then
    for _, id in ipairs(read_lines(os.getenv("BENCH_IDS"))) do
      requests[#requests + 1] = wrk.format("GET", prefix .. "/" .. id)
    end
  elseif workload == "update" then
    ids = read_lines(os.getenv("BENCH_IDS"))
    body_rest = read_file(os.getenv("BENCH_BODY"))
    wrk.headers["Content-Type"] = "application/fhir+json"
  elseif workload == "create" then
    wrk.method = "POST"
    wrk.path = prefix .. "/Patient"
    wrk.body = read_file(os.getenv("BENCH_BODY"))
    wrk.headers["Content-Type"] = "application/fhir+json"
  elseif workload == "tx" then
    wrk.method = "POST"
    wrk.path = prefix
    wrk.body = read_file(os.getenv("BENCH_BODY"))
    wrk.headers["Content-Type"] = "application/fhir+json"
  else
    error("unknown BENCH_WORKLOAD " .. workload)
  end
end

if workload == "read" then
  function request()
    return requests[math.random(#requests)]
  end
elseif workload == "update" then
  -- Thread k takes ids k, k+T, k+2T, ...: consecutive requests of all
  -- connections hit different resources (no version conflicts).
  function request()
    local i = ((tindex or 0) + counter * nthreads) % #ids + 1
    counter = counter + 1
    local id = ids[i]
    local body = '{"resourceType":"Patient","id":"' .. id .. '",' .. body_rest
    return wrk.format("PUT", prefix .. "/Patient/" .. id, nil, body)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
