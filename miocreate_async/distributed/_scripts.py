"""The shared journal's state changes, each one atomic Lua script run inside Redis.

A job is one hash (``state``, ``epoch``, ``owner``, ``lease``, ``spec``, ``task_id``, ...).
Whoever claims a job gets the next ``epoch``: a fencing token that every later change must
present, so a worker that lost its lease (paused, cut off) can never move a job another worker
now owns. Times come from the Redis server's clock (``TIME``), never from a worker's.
"""

from __future__ import annotations

__all__ = ["ADD", "ATTACH", "CLAIM", "GCRA", "MOVE", "REAP", "RELEASE", "RENEW", "SEAL"]

_PRELUDE = """
local FINAL = {succeeded=true, failed=true, uncertain=true, expired=true, downloaded=true}
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

#: KEYS: job, counts, jobs (zset by index), meta. ARGV: id, index, fingerprint, label, spec,
#: the batch's epoch marker as its driver found it ('' to skip the check).
#: Returns nil when the job was added, else its present state (submitting twice is harmless),
#: or 'lost' when the batch's records are gone: its jobs are never created again.
ADD = (
    _PRELUDE
    + """
if ARGV[6] ~= '' and redis.call('HGET', KEYS[4], 'epoch') ~= ARGV[6] then return 'lost' end
local state = redis.call('HGET', KEYS[1], 'state')
if state then return state end
redis.call('HSET', KEYS[1], 'state', 'pending', 'epoch', 0, 'owner', '', 'lease', 0,
           'index', ARGV[2], 'fingerprint', ARGV[3], 'label', ARGV[4], 'spec', ARGV[5],
           'updated_at', now_ms() / 1000)
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('HINCRBY', KEYS[2], 'pending', 1)
return false
"""
)

#: Finishing a job: final state, no owner, and its outcome appended to the outcomes stream when
#: it had none (``downloaded`` and ``expired`` come after ``succeeded``).
_FINISH = """
local function finish(job, leases, counts, outcomes, id, from, to)
  redis.call('HSET', job, 'state', to, 'owner', '', 'lease', 0, 'updated_at', now_ms() / 1000)
  redis.call('HINCRBY', counts, from, -1)
  redis.call('HINCRBY', counts, to, 1)
  redis.call('ZREM', leases, id)
  if not FINAL[from] then redis.call('XADD', outcomes, '*', 'id', id, 'state', to) end
end
"""

#: KEYS: job, leases, counts, outcomes. ARGV: id, owner, lease_ms, uncertain_error_json.
#: A job whose lease ended while it was "submitting" becomes "uncertain": its creation request
#: may have reached the server, so it is never sent again automatically.
CLAIM = (
    _PRELUDE
    + _FINISH
    + """
local h = redis.call('HMGET', KEYS[1], 'state', 'owner', 'lease', 'epoch', 'task_id')
local state = h[1]
if not state then return {'missing'} end
if FINAL[state] then return {'final'} end
local now = now_ms()
if h[2] and h[2] ~= '' and tonumber(h[3]) > now then return {'busy', h[2]} end
if state == 'submitting' then
  redis.call('HSET', KEYS[1], 'error', ARGV[4])
  finish(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], state, 'uncertain')
  return {'uncertain'}
end
local epoch = tonumber(h[4]) + 1
local lease = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'epoch', epoch, 'owner', ARGV[2], 'lease', lease)
redis.call('ZADD', KEYS[2], lease, ARGV[1])
return {'claimed', tostring(epoch), state, h[5] or ''}
"""
)

#: KEYS: job, leases. ARGV: id, epoch, lease_ms. 1 if the lease was extended, 0 if fenced.
RENEW = (
    _PRELUDE
    + """
local h = redis.call('HMGET', KEYS[1], 'state', 'epoch')
if not h[1] or FINAL[h[1]] or h[2] ~= ARGV[2] then return 0 end
local lease = now_ms() + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'lease', lease)
redis.call('ZADD', KEYS[2], lease, ARGV[1])
return 1
"""
)

#: KEYS: job, leases. ARGV: id, epoch. Gives a job back (a draining worker): lease ended now.
RELEASE = """
local h = redis.call('HMGET', KEYS[1], 'state', 'epoch')
if not h[1] or h[2] ~= ARGV[2] or h[1] == 'submitting' then return 0 end
redis.call('HSET', KEYS[1], 'owner', '', 'lease', 0)
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
"""

#: KEYS: job, leases, counts, outcomes, stop, created.
#: ARGV: id, epoch ('*': not fenced, for a batch's own driver), expected states (comma
#: separated), new state, lease_ms, max_tasks (0: no budget), stop value ('' to leave), then
#: field/value pairs.
#: Returns 'ok', 'fenced' (another owner or another state), 'stopped' (credits ran out on some
#: worker) or 'budget' (max_tasks reached). Only the move to "submitting" spends the budget, and
#: a refusal that provably created nothing ("submitting" -> "pending") gives it back.
MOVE = (
    _PRELUDE
    + _FINISH
    + """
local h = redis.call('HMGET', KEYS[1], 'state', 'epoch')
local state = h[1]
if not state then return 'fenced' end
if ARGV[2] ~= '*' and (h[2] ~= ARGV[2] or FINAL[state]) then return 'fenced' end
local expected = false
for s in string.gmatch(ARGV[3], '[^,]+') do
  if s == state then expected = true end
end
if not expected then return 'fenced' end
local to = ARGV[4]
if to == 'submitting' then
  if redis.call('EXISTS', KEYS[5]) == 1 then return 'stopped' end
  local budget = tonumber(ARGV[6])
  if budget > 0 and tonumber(redis.call('GET', KEYS[6]) or '0') >= budget then
    return 'budget'
  end
  redis.call('INCR', KEYS[6])
elseif state == 'submitting' and to == 'pending' then
  redis.call('DECR', KEYS[6])
end
if ARGV[7] ~= '' then redis.call('SET', KEYS[5], ARGV[7]) end
for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if to == 'submitted' and state ~= 'submitted' then
  redis.call('HSET', KEYS[1], 'created_at', now_ms() / 1000)  -- paid: the spend's day
end
if FINAL[to] then
  finish(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], state, to)
else
  local now = now_ms()
  redis.call('HSET', KEYS[1], 'state', to, 'updated_at', now / 1000)
  if ARGV[2] ~= '*' then
    redis.call('HSET', KEYS[1], 'lease', now + tonumber(ARGV[5]))
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[1])
  end
  if to ~= state then
    redis.call('HINCRBY', KEYS[3], state, -1)
    redis.call('HINCRBY', KEYS[3], to, 1)
  end
end
return 'ok'
"""
)

#: KEYS: job, leases, counts. ARGV: id, task_id. Unfenced: a creation's reply that came to a
#: worker which no longer owns the job (paused past its lease) is still recorded. A job without a
#: task that is "submitting" or "uncertain" (its owner's lease ended mid-creation) becomes
#: "submitted" with that task, owned by nobody and due now: whoever claims it next polls it.
#: An uncertain job its driver handed out already (``SEAL``) keeps its one outcome: the task
#: is recorded on it, the state stays. 1 if attached, 2 if only recorded, 0 if the job has a
#: task already or is elsewhere.
ATTACH = (
    _PRELUDE
    + """
local h = redis.call('HMGET', KEYS[1], 'state', 'task_id', 'handed')
local state = h[1]
if not state or (h[2] and h[2] ~= '') then return 0 end
if state ~= 'submitting' and state ~= 'uncertain' then return 0 end
if state == 'uncertain' and h[3] == '1' then
  redis.call('HSET', KEYS[1], 'task_id', ARGV[2], 'updated_at', now_ms() / 1000,
             'created_at', now_ms() / 1000)
  return 2
end
redis.call('HSET', KEYS[1], 'state', 'submitted', 'task_id', ARGV[2], 'owner', '', 'lease', 0,
           'updated_at', now_ms() / 1000, 'created_at', now_ms() / 1000)
redis.call('HDEL', KEYS[1], 'error')
redis.call('HINCRBY', KEYS[3], state, -1)
redis.call('HINCRBY', KEYS[3], 'submitted', 1)
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
"""
)

#: KEYS: job. The driver hands out an uncertain job's outcome: from now on it is the job's only
#: one (a late creation reply is recorded on it, no longer revives it). Returns the job's state
#: ('uncertain' when sealed), or '' when there is no such job.
SEAL = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return '' end
if state == 'uncertain' then redis.call('HSET', KEYS[1], 'handed', '1') end
return state
"""

#: KEYS: leases. ARGV: lease_ms, limit. The ids of jobs whose lease ended; each is pushed one
#: lease into the future so that only one reaper sends it back to the queue at a time.
REAP = (
    _PRELUDE
    + """
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), id)
end
return ids
"""
)

#: KEYS: the limiter's key. ARGV: interval_ms, burst. A GCRA reservation: returns how many
#: milliseconds (a string, fractions kept) the caller waits before it may send.
GCRA = (
    _PRELUDE
    + """
local interval = tonumber(ARGV[1])
local now = now_ms()
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now - (tonumber(ARGV[2]) - 1) * interval
if wait < 0 then wait = 0 end
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.ceil(tat + interval - now) + 1000)
return tostring(wait)
"""
)
