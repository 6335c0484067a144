-- wrk script: POST a small chat request, as the OpenAI SDK would.
--   BENCH_MODEL  the "model" field (default bench-chat)
--   BENCH_KEY    the bearer key (default sk-bench; nginx ignores it)
--   BENCH_API    chat (default), responses or messages: the same question in that API
--   BENCH_STREAM 1: ask for a stream (chat)
local model = os.getenv("BENCH_MODEL") or "bench-chat"
local key = os.getenv("BENCH_KEY") or "sk-bench"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.body = '{"model":"' .. model .. '","messages":['
  .. '{"role":"system","content":"You are a terse assistant."},'
  .. '{"role":"user","content":"In one sentence, what does an AI gateway add in front of a model server?"}'
  .. '],"max_tokens":64,"temperature":0}'
if os.getenv("BENCH_API") == "responses" then
  wrk.body = '{"model":"' .. model .. '","instructions":"You are a terse assistant.",'
    .. '"input":"In one sentence, what does an AI gateway add in front of a model server?",'
    .. '"max_output_tokens":64,"temperature":0' .. (os.getenv("BENCH_STORE") == "1" and '' or ',"store":false') .. '}'
end
if os.getenv("BENCH_API") == "messages" then
  wrk.headers["anthropic-version"] = "2023-06-01"
  wrk.body = '{"model":"' .. model .. '","system":"You are a terse assistant.",'
    .. '"messages":[{"role":"user","content":"In one sentence, what does an AI gateway add in front of a model server?"}],'
    .. '"max_tokens":64,"temperature":0}'
end
if os.getenv("BENCH_STREAM") == "1" and (os.getenv("BENCH_API") or "chat") == "chat" then
  wrk.body = string.sub(wrk.body, 1, -2) .. ',"stream":true}'
end
