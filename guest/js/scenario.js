// A scripted session in JavaScript (the same as guest/scenario in Rust and guest/python/scenario.py): subscribe
// to a topic, wait for a matching update, print it, close.
//
//     wsrun js-scenario.wasm URL [TOPIC] [TIMEOUT_MS]
//
// Exit 0 with `price TOPIC VALUE`; exit 3 when no update for TOPIC came in time.

import { WebSocket, args, exit, guest, metrics } from './wsrun-session.js';

export const run = guest(() => {
  const argv = args();
  const url = argv[1];
  const topic = argv[2] ?? 'BTC';
  const timeoutMs = Number(argv[3] ?? 2000);
  const ws = new WebSocket(url);
  ws.send(JSON.stringify({ subscribe: topic }));
  try {
    let text;
    // Until the connection closes (null) or the wait times out (a TimeoutError).
    while ((text = ws.recv({ timeoutMs })) !== null) {
      const update = JSON.parse(text);
      if (update && update.topic === topic && 'price' in update) {
        console.log(`price ${topic} ${update.price}`);
        metrics.count('updates', 1, { topic });
        metrics.check('update arrived', true);
        ws.close(1000, 'done');
        return;
      }
    }
  } catch (e) {
    if (e.name !== 'TimeoutError' && !(e instanceof SyntaxError)) throw e;
  }
  metrics.check('update arrived', false);
  console.error(`wsrun: scenario: no update for ${topic} within ${timeoutMs / 1000}s`);
  ws.close(4000, 'no update');
  exit(3);
});
