-- wrk script: refresh-token rotation chains (issue 16).
-- Each wrk thread takes its own refresh tokens from $SIGNET_WRK_TOKENS (one per
-- line, token i to thread i mod $SIGNET_WRK_THREADS; threads x connections + 1 of
-- them, since wrk builds one extra request on thread 0 to check the script,
-- and that token is never sent): a request sends the oldest
-- token of the thread's queue, its answer's new refresh token goes to the back.
-- One request per connection in flight, so a thread never runs dry; a token is
-- never sent twice (that would be reuse and revoke its session).
-- Usage: SIGNET_WRK_TOKENS=tokens.txt wrk -t2 -c32 -d5s -s benches/wrk/refresh.lua URL
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
end

function init(args)
  local path = os.getenv("SIGNET_WRK_TOKENS")
  local all = {}
  for line in io.lines(path) do
    if #line > 0 then table.insert(all, line) end
  end
  queue, first, last = {}, 1, 0
  -- Thread k takes every token whose position is k modulo the thread count.
  local count = tonumber(os.getenv("SIGNET_WRK_THREADS") or "2")
  for i, token in ipairs(all) do
    if (i - 1) % count == index then
      last = last + 1
      queue[last] = token
    end
  end
end

function request()
  local token = queue[first]
  if token == nil then
    -- A chain broke (its answer was not a 200): wrk counts the 401 this gets.
    token = "lost"
  else
    queue[first] = nil
    first = first + 1
  end
  local body = '{"refresh_token":"' .. token .. '"}'
  return wrk.format("POST", "/v1/auth/refresh", { ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, body)
  local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if status ~= 200 or token == nil then
    return -- wrk reports it under "Non-2xx or 3xx responses"
  end
  last = last + 1
  queue[last] = token
end
