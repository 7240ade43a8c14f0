"""Serves an ASGI app (an MCP server's streamable HTTP app) on 127.0.0.1 for the tests: on a port the system
picks, printing `PORT <n>` once it listens, until it is killed. Shared by the servers of tests/mcp-python
and tests/mcp-python2 (which put this folder on `sys.path`)."""

import logging
import socket

import uvicorn


def listener() -> socket.socket:
    """A socket listening on a free port of 127.0.0.1, for a server that must know its port first."""
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.bind(("127.0.0.1", 0))
    # Listening before the port is told: a connection made at once waits in the backlog until the server
    # accepts it, rather than being refused.
    listening.listen(128)
    return listening


def serve(app, listening: socket.socket | None = None) -> None:
    listening = listening or listener()
    # The SDK's own notices ("session manager started") would fill the test output.
    logging.getLogger("mcp").setLevel(logging.WARNING)
    print(f"PORT {listening.getsockname()[1]}", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listening])
