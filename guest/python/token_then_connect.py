"""The token-then-connect flow in Python: POST for a token, then open the WebSocket with it as a bearer token,
send one message and print the reply.

`wsrun --allow http://HOST:PORT py-token.wasm WS_URL TOKEN_URL [BODY]`: a POST of BODY, or a GET without one."""

import sys

from wit_world import exports
from wsrun_session import HttpError, WebSocket, WebSocketError, args, guest, http_request


class Run(exports.Run):
    @guest
    def run(self) -> None:
        url, token_url, *rest = args()[1:]
        try:
            if rest:
                response = http_request("POST", token_url, {"content-type": "text/plain"}, rest[0])
            else:
                response = http_request("GET", token_url)
        except HttpError as e:
            print(f"token_then_connect.py: HTTP: {e}", file=sys.stderr)
            raise SystemExit(1)
        print(f"HTTP {response.status} ({len(response.body)} bytes)", flush=True)
        try:
            ws = WebSocket(url, headers={"authorization": f"Bearer {response.text().strip()}"})
        except WebSocketError as e:
            print(f"token_then_connect.py: could not connect to {url}: {e}", file=sys.stderr)
            raise SystemExit(1)
        ws.send("hello")
        print(f"< {ws.recv()}", flush=True)
        ws.close()
