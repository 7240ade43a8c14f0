"""Drives Switchboard's `/v1/responses` with the official OpenAI SDK and prints what it parsed, as JSON.

Usage: responses.py BASE_URL API_KEY. The Rust test scripts the mock model's replies in this order.
"""
import json
import sys
import time

import openai

base_url, api_key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
out = {}

# 1. Not streaming.
plain = client.responses.create(model="gpt-4o-mini", instructions="Be brief.", input="Say hello")
out["plain"] = {
    "id": plain.id,
    "status": plain.status,
    "output_text": plain.output_text,
    "usage": plain.usage.model_dump(),
}

# 2. Streaming: typed events, numbered.
deltas, numbers, last, final = [], [], None, None
for event in client.responses.create(model="gpt-4o-mini", input="Stream please", stream=True):
    numbers.append(event.sequence_number)
    last = event.type
    if event.type == "response.output_text.delta":
        deltas.append(event.delta)
    if event.type == "response.completed":
        final = event.response
out["streamed"] = {"deltas": deltas, "numbers": numbers, "last": last, "output_text": final.output_text}

# 3. The client's own function: the model calls it, the client runs it and sends its output back,
# continuing the stored response.
tools = [{
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}]
first = client.responses.create(model="gpt-4o-mini", input="Weather in Lyon?", tools=tools)
call = next(item for item in first.output if item.type == "function_call")
second = client.responses.create(
    model="gpt-4o-mini",
    previous_response_id=first.id,
    input=[{"type": "function_call_output", "call_id": call.call_id, "output": json.dumps({"sky": "sunny"})}],
    tools=tools,
)
out["tool"] = {
    "first_id": first.id,
    "name": call.name,
    "arguments": json.loads(call.arguments),
    "answer": second.output_text,
}

# 4. Retrieved, and its input items.
retrieved = client.responses.retrieve(second.id)
out["retrieved"] = {"output_text": retrieved.output_text, "previous_response_id": retrieved.previous_response_id}
out["input_items"] = [item.type for item in client.responses.input_items.list(second.id, order="asc")]

# 5. In the background, polled until done; then its stream replayed after a sequence number.
background = client.responses.create(model="gpt-4o-mini", input="Take your time", background=True)
polled = client.responses.retrieve(background.id)
while polled.status in ("queued", "in_progress"):
    time.sleep(0.05)
    polled = client.responses.retrieve(background.id)
resumed, resumed_numbers = [], []
for event in client.responses.retrieve(background.id, stream=True, starting_after=3):
    resumed_numbers.append(event.sequence_number)
    if event.type == "response.output_text.delta":
        resumed.append(event.delta)
out["background"] = {
    "first_status": background.status,
    "status": polled.status,
    "output_text": polled.output_text,
    "resumed_numbers": resumed_numbers,
    "resumed_deltas": resumed,
}

# 6. Refusals in OpenAI's shape.
try:
    client.responses.create(model="gpt-4o-mini", input="hi", reasoning={"effort": "low"})
    out["bad_request"] = None
except openai.BadRequestError as error:
    out["bad_request"] = {"status": error.status_code, "param": error.param, "code": error.code}
try:
    client.responses.retrieve("resp_00000000000000000000000000000000")
    out["not_found"] = None
except openai.NotFoundError as error:
    out["not_found"] = {"status": error.status_code}

print(json.dumps(out))
