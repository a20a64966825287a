"""deflate_peer.py: Python websockets with permessage-deflate, as an echo
peer for interop/deflate_python_test.go. Run with Debian's interpreter
(/usr/bin/python3), which has python3-websockets 10.4.

    deflate_peer.py server CONFIGS

CONFIGS is a JSON list of objects, each passed as keyword arguments to
ServerPerMessageDeflateFactory, or null for the websockets default
(server_max_window_bits=12, client_max_window_bits=12). One echo server
is started per entry on 127.0.0.1; the first line on stdout is
{"ports": [...]}. After each connection closes, one line reports it:
{"port": P, "extensions": [...], "echoed": N, "code": C}.

    deflate_peer.py client

Reads commands from stdin, one JSON object per line:
{"url": U, "config": {...} or null}. For each, connects with that
ClientPerMessageDeflateFactory configuration (null: the websockets
default), echoes every message until the connection closes, and answers
one line: {"extensions": [...], "echoed": N, "code": C} or {"error": E}.

"extensions" describes what websockets negotiated: for each extension its
name and the local/remote context takeover and window bits.

The process exits when stdin closes.
"""

import asyncio
import json
import sys

import websockets
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)

MAX_SIZE = 64 << 20


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def describe(ws):
    return [
        {
            "name": e.name,
            "local_no_context_takeover": e.local_no_context_takeover,
            "remote_no_context_takeover": e.remote_no_context_takeover,
            "local_max_window_bits": e.local_max_window_bits,
            "remote_max_window_bits": e.remote_max_window_bits,
        }
        for e in ws.extensions
    ]


async def echo(ws):
    echoed = 0
    try:
        async for message in ws:
            await ws.send(message)
            echoed += 1
    except websockets.ConnectionClosed:
        pass
    return echoed


def extension_args(factory, config):
    if config is None:
        return {}  # compression="deflate", the library's default
    return {"compression": None, "extensions": [factory(**config)]}


async def serve(configs):
    servers = []
    ports = []
    for config in configs:
        async def handler(ws, path=None, config=config):
            echoed = await echo(ws)
            await ws.wait_closed()
            out({"port": ws.local_address[1], "extensions": describe(ws), "echoed": echoed, "code": ws.close_code})

        server = await websockets.serve(
            handler, "127.0.0.1", 0, max_size=MAX_SIZE, **extension_args(ServerPerMessageDeflateFactory, config)
        )
        servers.append(server)
        ports.append(server.sockets[0].getsockname()[1])
    out({"ports": ports})
    # Run until stdin closes.
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for server in servers:
        server.close()
        await server.wait_closed()


async def clients():
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
            async with websockets.connect(
                cmd["url"], max_size=MAX_SIZE, **extension_args(ClientPerMessageDeflateFactory, cmd.get("config"))
            ) as ws:
                ext = describe(ws)
                echoed = await echo(ws)
            out({"extensions": ext, "echoed": echoed, "code": ws.close_code})
        except Exception as e:  # report, keep serving
            out({"error": f"{type(e).__name__}: {e}"})


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "server":
        asyncio.run(serve(json.loads(sys.argv[2]) if len(sys.argv) > 2 else [None]))
    elif len(sys.argv) == 2 and sys.argv[1] == "client":
        asyncio.run(clients())
    else:
        sys.stderr.write("usage: deflate_peer.py server [CONFIGS] | client\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
