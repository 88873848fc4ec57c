"""{{name}}: a wsrun guest. It connects to its URL, sends its other arguments (or, without any, the lines of its
stdin) as text messages, printing the reply to each, then closes the connection. With `--token-url URL` after the
WebSocket URL, it first POSTs to that URL and connects with the answer as a bearer token (the HTTP call most real
sessions begin with; wsrun must grant its origin: `wsrun --allow http://127.0.0.1:8080 ...`).

    wsrun {{name}}.wasm ws://127.0.0.1:9000/ hello world

wsrun_session.py is the `WebSocket`, `metrics` and `http_request` helper; wit/websocket.wit is the interface it wraps."""

import sys
import time

from wit_world import exports
from wsrun_session import HttpError, WebSocket, WebSocketError, args, describe_close, guest, http_request, metrics


class Run(exports.Run):
    @guest
    def run(self) -> None:
        url, *messages = args()[1:]
        headers = {}
        if messages[:1] == ["--token-url"] and len(messages) > 1:
            token_url, messages = messages[1], messages[2:]
            try:
                response = http_request("POST", token_url)
            except HttpError as e:
                fail(f"{token_url}: {e}")
            if response.status != 200:
                fail(f"{token_url} answered HTTP {response.status}")
            headers["authorization"] = f"Bearer {response.text().strip()}"
        try:
            ws = WebSocket(url, headers=headers)
        except WebSocketError as e:
            fail(f"could not connect to {url}: {e}")
        try:
            # Each message, then its reply; stop early if the server closes.
            for message in messages or (line.rstrip("\r\n") for line in sys.stdin):
                sent = time.monotonic()
                ws.send(message)
                reply = ws.recv()
                if reply is None:
                    break
                # For `wsrun --sessions N --threshold 'reply_time.p95<100ms'`, and the summary of `wsrun -v`.
                metrics.duration("reply_time", time.monotonic() - sent)
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
