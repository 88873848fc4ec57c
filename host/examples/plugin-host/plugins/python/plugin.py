"""A plugin of the example tool in Python: a wsrun guest (through guest/python/wsrun_session.py) that also uses the
tool's own interfaces (`acme:bot`, ../../wit/bot.wit), imported from the bindings componentize-py makes of the
plugin world. Built with

    componentize-py -d ../../wit -w acme:bot/plugin componentize -p . -p ../../../../../guest/python plugin -o python-plugin.wasm

It waits for the Rust plugin's word in the store (so run it beside that one), echoes a message, and stores its own."""

from wit_world import exports
from wit_world.imports import kv, notify
from wsrun_session import WebSocket, args, guest


class Run(exports.Run):
    @guest
    def run(self) -> None:
        with WebSocket(args()[1]) as ws:
            notify.notify(f"connected to {ws.url}")
            rust = kv.wait("rust")
            ws.send("hello from Python")
            reply = ws.recv()
            kv.set("python", f"python saw {rust!r} and got {reply!r} back")
            ws.close(1000, "done")
