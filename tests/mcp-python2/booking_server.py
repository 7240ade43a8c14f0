"""A booking server that asks the person for input, for tests/api/tool_input.rs, written with the MCP
Python SDK v2.

Serves MCP over streamable HTTP on 127.0.0.1, on a port the system picks; prints `PORT <n>` once it
listens, and serves until it is killed. Its tool `book_room` asks which room and for how many nights
(MCP elicitation: under the 2026-07-28 revision an `input_required` result the client answers by making
the call again), then books it, or says it booked nothing when the person declined.
"""

import sys
from pathlib import Path
from typing import Annotated, Literal

from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve
from pydantic import BaseModel, Field

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "mcp-python"))
from listen import serve  # noqa: E402

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


if __name__ == "__main__":
    serve(server.streamable_http_app())
