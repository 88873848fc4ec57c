// The token-then-connect flow in JavaScript: POST for a token with the runtime's own fetch, then open the
// WebSocket with it as a bearer token, send one message and print the reply.
//
// `wsrun --allow http://HOST:PORT js-token.wasm WS_URL TOKEN_URL [BODY]`: a POST of BODY, or a GET without one.

import { WebSocket, args, exit, guest } from './wsrun-session.js';

export const run = guest(async () => {
  const [, url, tokenUrl, body] = args();
  let token;
  try {
    const response = body === undefined
      ? await fetch(tokenUrl)
      : await fetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'text/plain' }, body });
    token = (await response.text()).trim();
    console.log(`HTTP ${response.status} (${token.length} bytes)`);
  } catch (e) {
    console.error(`token.js: HTTP: ${e}`);
    exit(1);
  }
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
  ws.send('hello');
  console.log(`< ${ws.recv()}`);
  ws.close();
});
