"""{{name}}: a wsrun guest. It connects to its URL, sends its other arguments (or, without any, the lines of its
stdin) as text messages, printing the reply to each, then closes the connection.

    wsrun {{name}}.wasm ws://127.0.0.1:9000/ hello world

wsrun_session.py is the `WebSocket` helper; wit/websocket.wit is the interface it wraps."""

import sys

from wit_world import exports
from wsrun_session import WebSocket, WebSocketError, args, describe_close, guest


class Run(exports.Run):
    @guest
    def run(self) -> None:
        url, *messages = args()[1:]
        try:
            ws = WebSocket(url)
        except WebSocketError as e:
            fail(f"could not connect to {url}: {e}")
        try:
            # Each message, then its reply; stop early if the server closes.
            for message in messages or (line.rstrip("\r\n") for line in sys.stdin):
                ws.send(message)
                reply = ws.recv()
                if reply is None:
                    break
                show(reply)
            ws.close(1000)
            # The closing handshake: what the server still sends before its close frame.
            for reply in ws:
                show(reply)
        except WebSocketError as e:
            fail(str(e))
        print(f"Connection closed: {describe_close(ws.close_status)}.")


def show(reply) -> None:
    print(f"< {reply}" if isinstance(reply, str) else f"< (binary) {reply.hex()}", flush=True)


def fail(why: str) -> None:
    print(f"wsrun: {{name}}: {why}", file=sys.stderr)
    raise SystemExit(1)
