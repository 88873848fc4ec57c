"""The echo guest in Python: sends every message back unchanged until the peer closes.

`wsrun py-echo.wasm URL spin` instead connects and then spins forever, and `... URL raise` raises (for the
tests of Ctrl+C and of errors)."""

import sys

from wit_world import exports
from wsrun_session import WebSocket, WebSocketError, args, guest


class Run(exports.Run):
    @guest
    def run(self) -> None:
        url, *rest = args()[1:]
        try:
            ws = WebSocket(url)
        except WebSocketError as e:
            print(f"wsrun: echo.py: could not connect to {url}: {e}", file=sys.stderr)
            raise SystemExit(1)
        if rest[:1] == ["spin"]:
            print("connected", flush=True)
            while True:
                pass
        if rest[:1] == ["raise"]:
            check_input("not a number")
        for message in ws:
            ws.send(message)


def check_input(text: str) -> int:
    return int(text)
