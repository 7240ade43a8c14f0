"""A records server for tests/api/mcp_resources.rs, written with the official MCP Python SDK.

Serves MCP over streamable HTTP on 127.0.0.1, on a port the system picks; prints `PORT <n>` once it
listens, and serves until it is killed. It lists resources (a customer record as JSON, whose fields a
policy may block and whose orders a row limit may cut; a handbook in Markdown; a logo as binary), a
template of customer records, and a prompt with one required and one optional argument.
"""

import json

from mcp.server.fastmcp import FastMCP

from listen import serve

server = FastMCP("records", host="127.0.0.1", log_level="WARNING")


def customer(customer_id: str) -> str:
    return json.dumps(
        {
            "id": customer_id,
            "name": f"Customer {customer_id}",
            "ssn": f"SECRET-SSN-{customer_id}",
            "plan": "gold",
            "orders": [{"number": n, "total_eur": 10 * n} for n in range(1, 6)],
        }
    )


@server.resource("crm://customers/42", name="customer-42", mime_type="application/json")
def customer_42() -> str:
    return customer("42")


@server.resource("crm://customers/{customer_id}", name="customer", mime_type="application/json")
def any_customer(customer_id: str) -> str:
    return customer(customer_id)


@server.resource("notes://handbook", name="handbook", mime_type="text/markdown")
def handbook() -> str:
    return "# Handbook\n\nRefunds are granted within 30 days of purchase."


@server.resource("files://logo.png", name="logo", mime_type="image/png")
def logo() -> bytes:
    return b"\x89PNG\r\n\x1a\n"


@server.prompt(name="summarize_customer", description="Asks for a summary of one customer's record.")
def summarize_customer(customer_id: str, tone: str = "neutral") -> str:
    return f"Summarize customer {customer_id} in a {tone} tone."


if __name__ == "__main__":
    serve(server.streamable_http_app())
