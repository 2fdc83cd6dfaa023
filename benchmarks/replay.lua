-- wrk script for benchmarks/webhook.py: replays pre-signed POST /twilio/sms requests.
--
--   wrk -t1 -c8 -d70s --timeout 15s -s replay.lua http://127.0.0.1:PORT -- FILE BUDGET SECONDS CYCLE
--
-- FILE has one request a line: "<X-Twilio-Signature>\t<urlencoded form body>".
-- Sends the lines in order, each at most once (CYCLE=0) or round and round (CYCLE=1),
-- until BUDGET requests were issued or SECONDS have passed. It then asks only
-- GET /healthz (a "filler": no inbound message) until every webhook request already
-- issued has its answer, and stops. So no webhook request is ever abandoned in
-- flight, and the server's records can be checked exactly against the answers.
-- When done it prints a REPLAY-THREAD line; wrk then sleeps out -d unless sent SIGINT.
-- Must run with one thread (-t1): wrk calls request() once before starting to
-- check the script, and the first call answers that check with a filler.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } replay_timespec;
int clock_gettime(int clk_id, replay_timespec *tp);
]]
local ts = ffi.new("replay_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local path = args[1]
  budget = tonumber(args[2])
  seconds = tonumber(args[3])
  local cycle = args[4] == "1"
  requests = {}
  for line in io.lines(path) do
    local signature, body = line:match("^([^\t]*)\t(.*)$")
    if signature then
      requests[#requests + 1] = wrk.format("POST", "/twilio/sms", {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Twilio-Signature"] = signature,
      }, body)
    end
  end
  if not cycle and budget > #requests then
    budget = #requests
  end
  filler = wrk.format("GET", "/healthz")
  checked = false
  closed = false
  issued, answered, ok, bad, fillers = 0, 0, 0, 0, 0
  started, finished = 0, 0
  status_counts = {}
  status_text = ""
end

function request()
  if not checked then -- wrk's own check of the script, never sent
    checked = true
    return filler
  end
  if not closed then
    if started == 0 then
      started = now()
    end
    if issued < budget and now() - started < seconds then
      issued = issued + 1
      return requests[((issued - 1) % #requests) + 1]
    end
    closed = true
  end
  return filler
end

function response(status, headers, body)
  if body and body:find('"status"', 1, true) then
    fillers = fillers + 1
  else
    answered = answered + 1
    if status == 200 then
      ok = ok + 1
    else
      bad = bad + 1
      status_counts[status] = (status_counts[status] or 0) + 1
      local parts = {}
      for code, count in pairs(status_counts) do
        parts[#parts + 1] = code .. ":" .. count
      end
      status_text = table.concat(parts, ",")
    end
  end
  if closed and answered >= issued and finished == 0 then
    finished = now()
    -- wrk's main thread sleeps for the whole -d duration: this line tells the
    -- caller to end it now (SIGINT), and carries the counts in case it must be killed.
    io.write(string.format(
      'REPLAY-THREAD {"issued": %d, "answered": %d, "ok": %d, "bad": %d, "fillers": %d, "elapsed": %.6f, '
        .. '"capped": false, "connect": 0, "read": 0, "write": 0, "timeout": 0, "statuses": "%s"}\n',
      issued, answered, ok, bad, fillers, finished - started, status_text
    ))
    io.stdout:flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, reqs)
  local t = threads[1]
  local started_at, finished_at = t:get("started"), t:get("finished")
  local capped = finished_at == 0
  local elapsed = capped and summary.duration / 1e6 or (finished_at - started_at)
  io.write(string.format(
    'REPLAY {"issued": %d, "answered": %d, "ok": %d, "bad": %d, "fillers": %d, "elapsed": %.6f, '
      .. '"capped": %s, "connect": %d, "read": %d, "write": %d, "timeout": %d, "statuses": "%s"}\n',
    t:get("issued"), t:get("answered"), t:get("ok"), t:get("bad"), t:get("fillers"), elapsed,
    tostring(capped), summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, t:get("status_text")
  ))
end
