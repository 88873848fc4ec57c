"""A scripted session in Python (the same as guest/scenario in Rust and guest/js/scenario.js): subscribe to a
topic, wait for a matching update, print it, close.

    wsrun py-scenario.wasm URL [TOPIC] [TIMEOUT_MS]

Exit 0 with `price TOPIC VALUE`; exit 3 when no update for TOPIC came in time."""

import json
import sys

from wit_world import exports
from wsrun_session import WebSocket, args, exit, guest, metrics


class Run(exports.Run):
    @guest
    def run(self) -> None:
        argv = args()
        url = argv[1]
        topic = argv[2] if len(argv) > 2 else "BTC"
        timeout = (int(argv[3]) if len(argv) > 3 else 2000) / 1000
        with WebSocket(url) as ws:
            ws.send(json.dumps({"subscribe": topic}))
            try:
                while True:
                    update = json.loads(ws.recv(timeout=timeout))
                    if update.get("topic") == topic and "price" in update:
                        print(f"price {topic} {update['price']}")
                        metrics.count("updates", 1, {"topic": topic})
                        metrics.check("update arrived", True)
                        ws.close(1000, "done")
                        return
            except (TimeoutError, TypeError, ValueError):
                metrics.check("update arrived", False)
                print(f"wsrun: scenario: no update for {topic} within {timeout:g}s", file=sys.stderr)
                ws.close(4000, "no update")
                exit(3)
