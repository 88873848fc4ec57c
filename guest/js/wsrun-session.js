// A small JavaScript layer over wsrun's `websocket` interface: a WebSocket class with send, recv({ timeoutMs }),
// close() and iteration over messages, plus the guest's arguments and exit code. The bindings componentize-js
// generates from wit/ are used as they are.

import { Connection } from 'wsrun:ws/websocket@0.1.0';
import { getArguments } from 'wasi:cli/environment@0.2.12';
import { exitWithCode } from 'wasi:cli/exit@0.2.12';
import { subscribeDuration } from 'wasi:clocks/monotonic-clock@0.2.12';
import { poll } from 'wasi:io/poll@0.2.12';

/** A failure the host reported; `code` is the WIT `error-code` value ({ tag, val }). */
export class WebSocketError extends Error {
  constructor(code) {
    super(describe(code));
    this.code = code;
  }
}

/** One line for an `error-code` value. */
export function describe(code) {
  if (code && typeof code === 'object' && 'tag' in code) {
    return code.val === undefined ? code.tag : `${code.tag}: ${typeof code.val === 'object' ? JSON.stringify(code.val, (_, v) => (typeof v === 'bigint' ? Number(v) : v)) : code.val}`;
  }
  return String(code);
}

/** The guest's arguments: [name, URL, guest args...]. */
export const args = () => getArguments();

/** End the guest now with this exit code (wsrun exits with it). */
export const exit = (code) => exitWithCode(code);

/** The `run` export for a guest body: an uncaught throw becomes one `wsrun: ...` line plus the script's stack
 * and exit code 1 (componentize-js would otherwise turn it into a silent failure).
 *
 *     export const run = guest(() => { ... });
 */
export function guest(body) {
  return {
    run() {
      try {
        body();
      } catch (e) {
        console.error(`wsrun: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
        if (e instanceof Error && e.stack) {
          console.error(e.stack.trimEnd());
        }
        exit(1);
      }
    },
  };
}

/** Call a binding, turning the host's error-code into a WebSocketError. */
function host(call) {
  try {
    return call();
  } catch (e) {
    throw e && e.payload !== undefined ? new WebSocketError(e.payload) : e;
  }
}

export class WebSocket {
  constructor(url, { headers = {}, subprotocols = [] } = {}) {
    const options = {
      headers: Object.entries(headers).map(([name, value]) => ({ name, value })),
      subprotocols,
      openTimeoutMs: undefined,
      maxMessageSize: undefined,
      controlFrames: false,
      keepalive: undefined,
    };
    this.conn = host(() => Connection.connect(url, options));
  }

  get url() {
    return this.conn.url();
  }

  /** Send a string as a text message, anything else (Uint8Array, ArrayBuffer) as binary. */
  send(data) {
    const message = typeof data === 'string' ? { tag: 'text', val: data } : { tag: 'binary', val: new Uint8Array(data) };
    host(() => this.conn.send(message));
  }

  /** The next message (string or Uint8Array), or null once the connection has closed. With timeoutMs, throws a
   * TimeoutError when nothing came in time. */
  recv({ timeoutMs } = {}) {
    if (timeoutMs !== undefined) {
      const ready = this.conn.subscribe();
      const timer = subscribeDuration(BigInt(Math.round(timeoutMs * 1e6)));
      const woken = poll([ready, timer]);
      if (!woken.includes(0)) {
        const error = new Error(`no message within ${timeoutMs} ms`);
        error.name = 'TimeoutError';
        throw error;
      }
    }
    const message = host(() => this.conn.receive());
    if (message === undefined || message === null) {
      return null;
    }
    if (message.tag === 'ping' || message.tag === 'pong') {
      return this.recv({ timeoutMs });
    }
    return message.val;
  }

  /** Start the closing handshake; messages still arriving can be read until recv returns null. */
  close(code = 1000, reason = '') {
    try {
      this.conn.close(code, reason);
    } catch (e) {
      // Already closed: nothing to do.
    }
  }

  /** Messages until the connection closes: `for (const message of ws) ...` */
  *[Symbol.iterator]() {
    let message;
    while ((message = this.recv()) !== null) {
      yield message;
    }
  }
}
