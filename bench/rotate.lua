-- rotate.lua: wrk script that cycles through prepared requests and reports percentiles.
--
-- Usage: wrk ... -s bench/rotate.lua <url> -- <requests-file>
-- Each line of the requests file is one request, tab-separated:
--   METHOD <tab> PATH <tab> BODY <tab> Header-Name: value [<tab> ...]
-- (an empty BODY means none). Every request is formatted once in init, so
-- the per-request cost inside wrk is a table lookup, and each thread walks
-- the list from its own offset so the 100 users' sessions stay spread out.

local prepared = {}
local position = 0
local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

local function split_tabs(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    fields[#fields + 1] = field
  end
  return fields
end

function init(args)
  local path = args[1]
  if path == nil then
    error("rotate.lua needs the requests file after --")
  end
  for line in io.lines(path) do
    if line ~= "" then
      local fields = split_tabs(line)
      local headers = {}
      for i = 4, #fields do
        local name, value = fields[i]:match("^([^:]+):%s*(.*)$")
        if name ~= nil then
          headers[name] = value
        end
      end
      local body = fields[3]
      if body == "" then
        body = nil
      end
      prepared[#prepared + 1] = wrk.format(fields[1], fields[2], headers, body)
    end
  end
  if #prepared == 0 then
    error("rotate.lua: the requests file is empty")
  end
  -- thread_index is set by setup(); spread the threads' starting points.
  position = ((thread_index or 0) * 37) % #prepared
end

function request()
  position = position % #prepared + 1
  return prepared[position]
end

-- One machine-readable line for bench/load.py; latencies are in microseconds.
function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "BENCH_RESULT {\"requests\": %d, \"duration_us\": %d, \"p50_us\": %d, \"p99_us\": %d, "
      .. "\"http_errors\": %d, \"socket_errors\": %d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end
