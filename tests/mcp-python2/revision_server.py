"""A server of both MCP revisions for tests/api/mcp_revisions.rs, written with the MCP Python SDK v2.

Serves MCP over streamable HTTP on 127.0.0.1, on a port the system picks; prints `PORT <n>` once it
listens, and serves until it is killed. The SDK answers 2026-07-28 requests (each on its own, after
`server/discover`) and 2025-11-25 sessions (after `initialize`) on the same endpoint. Its one tool says
which revision the request that called it was made in, as the server saw it.
"""

import socket
import sys

import uvicorn
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("revisions")


@server.tool(description="Says which MCP protocol revision this request was made in.")
def protocol_version(ctx: Context) -> str:
    return ctx.protocol_version or "unknown"


def main() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    # Listening before the port is told: a connection made at once waits in the backlog until the server
    # accepts it, rather than being refused.
    listener.listen(128)
    port = listener.getsockname()[1]
    config = uvicorn.Config(server.streamable_http_app(), log_level="warning")
    print(f"PORT {port}", flush=True)
    uvicorn.Server(config).run(sockets=[listener])


if __name__ == "__main__":
    sys.exit(main())
