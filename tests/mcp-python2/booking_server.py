"""A booking server that asks the person for input, for tests/api/tool_input.rs, written with the MCP
Python SDK v2.

Serves MCP over streamable HTTP on 127.0.0.1, on a port the system picks; prints `PORT <n>` once it
listens, and serves until it is killed. Its tool `book_room` asks which room and for how many nights
(MCP elicitation: under the 2026-07-28 revision an `input_required` result the client answers by making
the call again), then books it, or says it booked nothing when the person declined.
"""

import socket
import sys
from typing import Annotated, Literal

import uvicorn
from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve
from pydantic import BaseModel, Field

server = MCPServer("booking")


class Stay(BaseModel):
    room: Literal["single", "double"]
    nights: int = Field(ge=1, le=14)


def ask_stay(guest: str) -> Elicit[Stay]:
    return Elicit(f"Which room, and for how many nights, for {guest}?", Stay)


@server.tool(description="Books a room for a guest, asking which room and how many nights.")
def book_room(guest: str, stay: Annotated[ElicitationResult[Stay], Resolve(ask_stay)]) -> dict:
    if isinstance(stay, AcceptedElicitation):
        return {"booked": True, "guest": guest, "room": stay.data.room, "nights": stay.data.nights}
    return {"booked": False, "guest": guest, "reason": stay.action}


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
