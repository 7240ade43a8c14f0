"""Drives Switchboard's `/v1/embeddings` with the official OpenAI SDK and prints what it parsed, as JSON.

Usage: embeddings.py BASE_URL API_KEY. The SDK asks for base64 unless told otherwise, and decodes it.
"""
import json
import sys

import openai

base_url, api_key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
out = {}

default = client.embeddings.create(model="all-minilm-l6-v2", input=["bees make honey", "hives in spring"])
out["default"] = {
    "count": len(default.data),
    "indexes": [item.index for item in default.data],
    "dimensions": [len(item.embedding) for item in default.data],
    "first": default.data[0].embedding[:4],
    "usage": default.usage.model_dump(),
    "model": default.model,
}

floats = client.embeddings.create(model="all-minilm-l6-v2", input="bees make honey", encoding_format="float")
out["float_first"] = floats.data[0].embedding[:4]

shortened = client.embeddings.create(model="text-embedding-3-small", input="rotate the master key", dimensions=256)
out["shortened"] = {"dimensions": len(shortened.data[0].embedding), "usage": shortened.usage.model_dump()}

try:
    client.embeddings.create(model="no-such-embedder", input="x")
    out["unknown"] = "accepted"
except openai.NotFoundError as error:
    out["unknown"] = {"status": error.status_code, "code": error.code, "param": error.param}

try:
    client.embeddings.create(model="all-minilm-l6-v2", input=[])
    out["empty"] = "accepted"
except openai.BadRequestError as error:
    out["empty"] = {"status": error.status_code, "param": error.param}

print(json.dumps(out))
