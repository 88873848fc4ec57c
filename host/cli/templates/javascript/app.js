// {{name}}: a wsrun guest. It connects to its URL, sends its other arguments (or, without any, the lines of its
// stdin) as text messages, printing the reply to each, then closes the connection. With `--token-url URL` after the
// WebSocket URL, it first POSTs to that URL (with the runtime's own fetch) and connects with the answer as a bearer
// token (the HTTP call most real sessions begin with; wsrun must grant its origin:
// `wsrun --allow http://127.0.0.1:8080 ...`).
//
//     wsrun {{name}}.wasm ws://127.0.0.1:9000/ hello world
//
// wsrun-session.js is the `WebSocket` and `metrics` helper; wit/websocket.wit is the interface it wraps.

import { WebSocket, WebSocketError, args, describeClose, exit, guest, metrics, stdinLines } from './wsrun-session.js';

export const run = guest(async () => {
  let [, url, ...messages] = args();
  const headers = {};
  if (messages[0] === '--token-url' && messages.length > 1) {
    const tokenUrl = messages[1];
    messages = messages.slice(2);
    let response;
    try {
      response = await fetch(tokenUrl, { method: 'POST' });
    } catch (e) {
      console.error(`wsrun: {{name}}: ${tokenUrl}: ${e}`);
      exit(1);
    }
    if (response.status !== 200) {
      console.error(`wsrun: {{name}}: ${tokenUrl} answered HTTP ${response.status}`);
      exit(1);
    }
    headers.authorization = `Bearer ${(await response.text()).trim()}`;
  }
  let ws;
  try {
    ws = new WebSocket(url, { headers });
  } catch (e) {
    fail(e, `could not connect to ${url}: `);
  }
  try {
    // Each message, then its reply; stop early if the server closes.
    for (const message of messages.length > 0 ? messages : stdinLines()) {
      const sent = Date.now();
      ws.send(message);
      const reply = ws.recv();
      if (reply === null) {
        break;
      }
      // For `wsrun --sessions N --threshold 'reply_time.p95<100ms'`, and the summary of `wsrun -v`.
      metrics.duration('reply_time', Date.now() - sent);
      show(reply);
    }
    ws.close(1000);
    // The closing handshake: what the server still sends before its close frame.
    for (const reply of ws) {
      show(reply);
    }
  } catch (e) {
    fail(e, '');
  }
  console.log(`Connection closed: ${describeClose(ws.closeStatus)}.`);
});

function show(reply) {
  if (typeof reply === 'string') {
    console.log(`< ${reply}`);
  } else {
    console.log(`< (binary) ${Array.from(reply, (byte) => byte.toString(16).padStart(2, '0')).join('')}`);
  }
}

// A failure the host reported is one line and exit code 1; anything else is a bug, shown with its stack.
function fail(error, context) {
  if (!(error instanceof WebSocketError)) {
    throw error;
  }
  console.error(`wsrun: {{name}}: ${context}${error.message}`);
  exit(1);
}
