"""A server of both MCP revisions for tests/api/mcp_revisions.rs, written with the MCP Python SDK v2.

Serves MCP over streamable HTTP on 127.0.0.1, on a port the system picks; prints `PORT <n>` once it
listens, and serves until it is killed. The SDK answers 2026-07-28 requests (each on its own, after
`server/discover`) and 2025-11-25 sessions (after `initialize`) on the same endpoint. Its one tool says
which revision the request that called it was made in, as the server saw it.
"""

import sys
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "mcp-python"))
from listen import serve  # noqa: E402

server = MCPServer("revisions")


@server.tool(description="Says which MCP protocol revision this request was made in.")
def protocol_version(ctx: Context) -> str:
    return ctx.protocol_version or "unknown"


if __name__ == "__main__":
    serve(server.streamable_http_app())
