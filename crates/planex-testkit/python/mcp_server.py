"""An MCP server written with the official Python SDK (PyPI `mcp`, pinned in
planex_testkit::python::MCP_SERVER_TOOLS), for planex's MCP tests.

Usage: mcp_server.py stdio       serve on stdin/stdout
       mcp_server.py http        serve streamable HTTP on a free 127.0.0.1 port; the first line
                                 printed is `listening on http://127.0.0.1:PORT/mcp`

Tools: `lookup` (structured output), `fail` (raises: the call is answered with isError),
`hang` (sleeps: for timeouts), `crash` (the server process dies mid-call), `grow` (adds the tool
`extra` and sends `notifications/tools/list_changed`).

With PLANEX_TEST_MCP_REFUSE_FILE set to a path that exists, the server exits at once when started
(a server that cannot be restarted).
"""

import asyncio
import os
import socket
import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

server = MCPServer("planex-test", log_level="ERROR")


class Facts(BaseModel):
    topic: str
    facts: list[str]


@server.tool(description="Facts about a topic")
def lookup(topic: str) -> Facts:
    return Facts(topic=topic, facts=[f"{topic} fact one", f"{topic} fact two"])


@server.tool(description="Always fails with the given reason")
def fail(reason: str) -> str:
    raise ToolError(f"refused: {reason}")


@server.tool(description="Answers after the given number of seconds")
async def hang(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "woke up"


@server.tool(description="Kills this server while the call is in flight")
def crash(note: str) -> str:
    os._exit(3)


def extra(text: str) -> str:
    return f"extra: {text}"


@server.tool(description="Adds the tool `extra` and tells the client that the tool list changed")
async def grow(note: str, ctx: Context) -> str:
    server.add_tool(extra, name="extra", description="Echoes its text (added at run time)")
    await ctx.session.send_tool_list_changed()
    return "grown"


def serve_http() -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(app, log_level="error")
    print(f"listening on http://127.0.0.1:{port}/mcp", flush=True)
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    refuse = os.environ.get("PLANEX_TEST_MCP_REFUSE_FILE")
    if refuse and os.path.exists(refuse):
        sys.exit(4)
    mode = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    if mode == "http":
        serve_http()
    else:
        server.run("stdio")
