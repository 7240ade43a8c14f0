"""Calls Switchboard's own MCP server (`/mcp`) with the MCP Python SDK v2's client, for
tests/api/mcp_revisions.rs.

Usage: search_client.py URL MODE QUERY, with the tenant key in SWITCHBOARD_KEY. MODE is the client's:
`auto` (probes `server/discover`, the 2026-07-28 revision, and falls back to `initialize`), `legacy`
(2025-11-25's `initialize`) or a pinned revision. Prints one JSON line: the revision the session
speaks, the tools listed and what `search_docs` found.
"""

import json
import os
import sys

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main(url: str, mode: str, query: str) -> None:
    headers = {"Authorization": f"Bearer {os.environ['SWITCHBOARD_KEY']}"}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            tools = await client.list_tools()
            found = await client.call_tool("search_docs", {"query": query, "limit": 3})
            print(
                json.dumps(
                    {
                        "protocol_version": client.protocol_version,
                        "tools": [tool.name for tool in tools.tools],
                        "is_error": bool(found.is_error),
                        "result": found.structured_content,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3])
