"""A workspace check server for tests/api/agent_edits.rs, written with the official MCP Python SDK.

Serves MCP over streamable HTTP on 127.0.0.1, on a port the system picks; prints `PORT <n>` once it
listens, and serves until it is killed. Its tools follow Switchboard's check contract: called with
`{"files": [{"path", "content"}, ...]}`, they answer `{status, stdout, stderr, report}`.
"""

from mcp.server.fastmcp import FastMCP
from mcp.types import ToolAnnotations
from pydantic import BaseModel

from listen import serve

server = FastMCP("checks", host="127.0.0.1", log_level="WARNING")


class File(BaseModel):
    path: str
    content: str


@server.tool(
    description="Fails when a file contains TODO; passes otherwise.",
    annotations=ToolAnnotations(readOnlyHint=True),
)
def no_todos(files: list[File]) -> dict:
    found = [
        {"path": file.path, "line": number}
        for file in files
        for number, line in enumerate(file.content.splitlines(), start=1)
        if "TODO" in line
    ]
    stdout = "".join(f"{hit['path']}:{hit['line']}: TODO\n" for hit in found)
    return {
        "status": "failed" if found else "passed",
        "stdout": stdout or f"{len(files)} files, no TODO\n",
        "stderr": "",
        "report": {"files_checked": len(files), "todos": found},
    }


@server.tool(description="Runs the test suite.", annotations=ToolAnnotations(readOnlyHint=True))
def run_tests(files: list[File]) -> dict:
    return {"status": "passed", "stdout": f"{len(files)} files\n", "stderr": "", "report": None}


if __name__ == "__main__":
    serve(server.streamable_http_app())
