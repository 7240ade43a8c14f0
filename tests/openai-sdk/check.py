"""Drives Switchboard's OpenAI-compatible door with the official SDK and prints what it parsed, as JSON.

Usage: check.py BASE_URL API_KEY. The Rust test scripts the mock model's replies in this order.
"""
import json
import sys

import openai

base_url, api_key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
out = {}

# 1. Not streaming.
completion = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}],
)
out["plain"] = {
    "object": completion.object,
    "content": completion.choices[0].message.content,
    "finish_reason": completion.choices[0].finish_reason,
    "usage": completion.usage.model_dump(),
    "id": completion.id,
}

# 2. Streaming with the usage chunk.
pieces, finish, usage = [], None, None
for chunk in client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Stream please"}],
    stream=True,
    stream_options={"include_usage": True},
):
    if chunk.choices:
        delta = chunk.choices[0].delta
        if delta.content:
            pieces.append(delta.content)
        if chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    if chunk.usage:
        usage = chunk.usage.model_dump()
out["streamed"] = {"pieces": pieces, "finish_reason": finish, "usage": usage}

# 3. The client's own tool: the model calls it, the client runs it and sends the result back.
tools = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]
messages = [{"role": "user", "content": "Weather in Lyon?"}]
first = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
call = first.choices[0].message.tool_calls[0]
messages.append(first.choices[0].message.model_dump(exclude_none=True))
messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"sky": "sunny"})})
second = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
out["tool"] = {
    "finish_reason": first.choices[0].finish_reason,
    "name": call.function.name,
    "arguments": json.loads(call.function.arguments),
    "answer": second.choices[0].message.content,
}

# 4. The same tool call, streamed.
calls = {}
finish = None
for chunk in client.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "Weather in Nantes?"}], tools=tools, stream=True
):
    for delta in chunk.choices[0].delta.tool_calls or []:
        entry = calls.setdefault(delta.index, {"name": "", "arguments": ""})
        if delta.function.name:
            entry["name"] += delta.function.name
        if delta.function.arguments:
            entry["arguments"] += delta.function.arguments
    if chunk.choices[0].finish_reason:
        finish = chunk.choices[0].finish_reason
out["streamed_tool"] = {"calls": list(calls.values()), "finish_reason": finish}

# 5. Models.
out["models"] = [model.id for model in client.models.list()]

# 6. A wrong key, streaming and not.
bad = openai.OpenAI(base_url=base_url, api_key="sbk_wrong", max_retries=0)
errors = []
for stream in (False, True):
    try:
        bad.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=stream)
        errors.append(None)
    except openai.AuthenticationError as error:
        errors.append({"status": error.status_code, "code": error.code, "type": error.type, "message": error.message})
out["wrong_key"] = errors

# 7. A bad request.
try:
    client.chat.completions.create(model="gpt-4o-mini", messages=[])
    out["bad_request"] = None
except openai.BadRequestError as error:
    out["bad_request"] = {"status": error.status_code, "code": error.code, "type": error.type}

print(json.dumps(out))
