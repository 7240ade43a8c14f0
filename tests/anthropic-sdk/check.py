"""Drives Switchboard's Anthropic-compatible door with the official SDK and prints what it parsed, as JSON.

Usage: check.py BASE_URL API_KEY (BASE_URL without /v1: the SDK adds it). The Rust test scripts the mock
model's replies in this order: plain, streamed, tool call, answer after the result, streamed tool call.
"""
import json
import sys

import anthropic

base_url, api_key = sys.argv[1], sys.argv[2]
client = anthropic.Anthropic(base_url=base_url, api_key=api_key, max_retries=0)
MODEL = "claude-sonnet-4-5"
out = {}

# 1. Not streaming.
message = client.messages.create(
    model=MODEL, max_tokens=256, system="Be brief.", messages=[{"role": "user", "content": "Say hello"}]
)
out["plain"] = {
    "type": message.type,
    "id": message.id,
    "text": message.content[0].text,
    "stop_reason": message.stop_reason,
    "usage": message.usage.model_dump(),
}

# 2. Streaming, with the SDK's helper: the text as it comes, then the message it assembled.
with client.messages.stream(
    model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "Stream please"}]
) as stream:
    pieces = list(stream.text_stream)
    final = stream.get_final_message()
out["streamed"] = {
    "pieces": pieces,
    "text": "".join(block.text for block in final.content if block.type == "text"),
    "stop_reason": final.stop_reason,
    "usage": final.usage.model_dump(),
}

# 3. The client's own tool: the model calls it, the client runs it and sends the result back.
tools = [{
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]
messages = [{"role": "user", "content": "Weather in Lyon?"}]
first = client.messages.create(model=MODEL, max_tokens=256, messages=messages, tools=tools)
call = next(block for block in first.content if block.type == "tool_use")
messages.append({"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]})
messages.append({"role": "user", "content": [
    {"type": "tool_result", "tool_use_id": call.id, "content": json.dumps({"sky": "sunny"})}
]})
second = client.messages.create(model=MODEL, max_tokens=256, messages=messages, tools=tools)
out["tool"] = {
    "stop_reason": first.stop_reason,
    "name": call.name,
    "input": call.input,
    "answer": second.content[0].text,
}

# 4. The same tool call, streamed: the helper assembles the input from its JSON pieces.
with client.messages.stream(
    model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "Weather in Nantes?"}], tools=tools
) as stream:
    final = stream.get_final_message()
out["streamed_tool"] = {
    "stop_reason": final.stop_reason,
    "calls": [{"name": block.name, "input": block.input} for block in final.content if block.type == "tool_use"],
}

# 5. Counting tokens.
out["count"] = client.messages.count_tokens(
    model=MODEL, system="Be brief.", tools=tools, messages=[{"role": "user", "content": "Weather in Lyon?"}]
).input_tokens

# 6. A wrong key.
bad = anthropic.Anthropic(base_url=base_url, api_key="sb_wrong", max_retries=0)
try:
    bad.messages.create(model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    out["wrong_key"] = None
except anthropic.AuthenticationError as error:
    out["wrong_key"] = {"status": error.status_code, "type": error.body["error"]["type"]}

# 7. A field Switchboard does not take.
try:
    client.messages.create(
        model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}], extra_body={"frobnicate": 1}
    )
    out["bad_request"] = None
except anthropic.BadRequestError as error:
    out["bad_request"] = {
        "status": error.status_code,
        "type": error.body["error"]["type"],
        "message": error.body["error"]["message"],
    }

print(json.dumps(out))
