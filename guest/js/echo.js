// The echo guest in JavaScript: sends every message back unchanged until the peer closes.
// `wsrun js-echo.wasm URL spin` instead connects and then spins forever, and `... URL throw` throws (for the tests
// of Ctrl+C and of errors).

import { WebSocket, WebSocketError, args, exit, guest } from './wsrun-session.js';

export const run = guest(() => {
  const [, url, mode] = args();
  let ws;
  try {
    ws = new WebSocket(url);
  } catch (e) {
    if (!(e instanceof WebSocketError)) throw e;
    console.error(`wsrun: echo.js: could not connect to ${url}: ${e.message}`);
    exit(1);
  }
  if (mode === 'spin') {
    console.log('connected');
    for (;;) {}
  }
  if (mode === 'throw') {
    checkInput('not a number');
  }
  for (const message of ws) {
    ws.send(message);
  }
});

function checkInput(text) {
  const number = Number(text);
  if (Number.isNaN(number)) {
    throw new TypeError(`bad input: ${JSON.stringify(text)} is not a number`);
  }
  return number;
}
