//! A real python-websockets server (the `websockets` package, 15.x, installed by `scripts/setup.sh`), for what the
//! tests' own servers cannot stand for: a peer whose compression and handshake were not written by us.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::util::{within, BOUND};

/// The server. It echoes every message, and answers a few words: `wire?` with how many bytes it has read from the
/// socket so far and the extensions agreed on (JSON), `fragments` with one text message in three fragments, `binary`
/// with 5,120 bytes of binary, `bomb N` with N zero bytes as one binary message (compressed to a few KiB).
const SERVER: &str = r#"
import asyncio, json, sys
from http import HTTPStatus
from websockets.asyncio.server import ServerConnection, serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

mode = sys.argv[1]

class Counting(ServerConnection):
    wire_in = 0
    def data_received(self, data):
        self.wire_in += len(data)
        super().data_received(data)

async def handler(ws):
    async for m in ws:
        if m == "wire?":
            await ws.send(json.dumps({"wire_in": ws.wire_in, "extensions": [str(e) for e in ws.protocol.extensions]}))
        elif m == "fragments":
            await ws.send(["frag-one ", "frag-two ", "frag-three"])
        elif m == "binary":
            await ws.send(bytes(range(256)) * 20)
        elif isinstance(m, str) and m.startswith("bomb "):
            await ws.send(bytes(int(m.split()[1])))
        else:
            await ws.send(m)

def process_request(connection, request):
    if mode == "refuse":
        return connection.respond(HTTPStatus.BAD_REQUEST, "Missing subprotocol: ask for chat.v2\nmore\n")

def process_response(connection, request, response):
    if mode.startswith("answer:"):
        if "Sec-WebSocket-Extensions" in response.headers:
            del response.headers["Sec-WebSocket-Extensions"]
        response.headers["Sec-WebSocket-Extensions"] = mode[len("answer:"):]

async def main():
    options = {}
    if mode == "no-context-takeover":
        options["compression"] = None
        options["extensions"] = [ServerPerMessageDeflateFactory(
            server_no_context_takeover=True, client_no_context_takeover=True, server_max_window_bits=10)]
    async with serve(handler, "127.0.0.1", 0, create_connection=Counting, max_size=None,
                     process_request=process_request, process_response=process_response, **options) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().create_future()

asyncio.run(main())
"#;

/// A running server, stopped when dropped.
pub struct PythonServer {
    pub url: String,
    _child: Child,
}

impl PythonServer {
    /// Start the server in `mode`: `compression` (python-websockets' defaults), `no-context-takeover`, `refuse`
    /// (400 with a body) or `answer:VALUE` (its handshake answer's `Sec-WebSocket-Extensions` replaced by VALUE).
    pub async fn start(mode: &str) -> PythonServer {
        let mut child = Command::new("python3")
            .args(["-c", SERVER, mode])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Its log of the connections the tests end on purpose (a bomb refused, a handshake failed) is noise.
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 (scripts/setup.sh installs the websockets package)");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let port = within(BOUND, "the python-websockets server's port", lines.next_line())
            .await
            .expect("read the server's port")
            .expect("the server printed its port: is the websockets package installed (scripts/setup.sh)?");
        PythonServer { url: format!("ws://127.0.0.1:{port}/"), _child: child }
    }
}
