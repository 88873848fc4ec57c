// A small JavaScript layer over wsrun's `websocket` interface: a WebSocket class with send, recv({ timeoutMs }),
// close(), closeStatus and iteration over messages, plus the guest's arguments, stdin lines, exit code, close
// codes in words, and `metrics` for the run's summary and thresholds. The bindings componentize-js generates from wit/ are used as they are. This file is also the
// helper of `wsrun new javascript` projects (the wsrun binary embeds it).

import { Connection } from 'wsrun:ws/websocket@0.2.0';
import * as hostMetrics from 'wsrun:ws/metrics@0.2.0';
import { getArguments } from 'wasi:cli/environment@0.2.12';
import { exitWithCode } from 'wasi:cli/exit@0.2.12';
import { getStdin } from 'wasi:cli/stdin@0.2.12';
import { subscribeDuration } from 'wasi:clocks/monotonic-clock@0.2.12';
import { poll } from 'wasi:io/poll@0.2.12';

const tagList = (tags = {}) => Object.entries(tags).map(([name, value]) => ({ name, value: String(value) }));
const u64 = (n) => BigInt(Math.max(0, Math.round(Number(n))));

/**
 * The guest's own measurements, for the run's summary, --report and --threshold (`wsrun:ws/metrics`). Tags are an
 * object: `metrics.duration('rtt', 2.1, { kind: 'echo' })` (milliseconds). Recording never fails: what the host
 * does not keep (a malformed name, past its cap) it counts as dropped.
 */
export const metrics = {
  /** Add `delta` to the counter `name`. */
  count(name, delta = 1, tags) { hostMetrics.count(name, u64(delta), tagList(tags)); },
  /** Record a duration, in milliseconds, in the trend `name`. */
  duration(name, ms, tags) { hostMetrics.duration(name, u64(ms * 1e6), tagList(tags)); },
  /** Record a plain value (a size, a count) in the trend `name`. */
  value(name, value, tags) { hostMetrics.value(name, u64(value), tagList(tags)); },
  /** Count an event of the rate `name`, a hit or not. */
  rate(name, hit, tags) { hostMetrics.rate(name, Boolean(hit), tagList(tags)); },
  /** Record the check `name`'s outcome, and return it. */
  check(name, passed, tags) { hostMetrics.check(name, Boolean(passed), tagList(tags)); return Boolean(passed); },
};

/** A failure the host reported; `code` is the WIT `error-code` value ({ tag, val }). */
export class WebSocketError extends Error {
  constructor(code) {
    super(describe(code));
    this.code = code;
  }
}

/** One line for an `error-code` value. */
export function describe(code) {
  if (code && code.tag === 'http-status') {
    // The server's own explanation, when it gave one: the body's first line, cut.
    const line = new TextDecoder().decode(code.val.body).split('\n').map((l) => l.trim()).find((l) => l);
    return `http-status: ${code.val.status} ${code.val.reason}${line ? `: ${line.slice(0, 200)}` : ''}`;
  }
  if (code && typeof code === 'object' && 'tag' in code) {
    return code.val === undefined ? code.tag : `${code.tag}: ${typeof code.val === 'object' ? JSON.stringify(code.val, (_, v) => (typeof v === 'bigint' ? Number(v) : v)) : code.val}`;
  }
  return String(code);
}

/** A `closeStatus` as people read it: `1000 (OK)`, or `4001 (bye)` when the peer gave a reason. */
export function describeClose(status) {
  if (!status) {
    return 'still open';
  }
  return `${status.code} (${status.reason || closeCodeName(status.code)})`;
}

const CLOSE_CODE_NAMES = {
  1000: 'OK', 1001: 'going away', 1002: 'protocol error', 1003: 'unsupported data', 1005: 'no status received',
  1006: 'abnormal closure', 1007: 'invalid frame payload data', 1008: 'policy violation', 1009: 'message too big',
  1010: 'mandatory extension', 1011: 'internal error', 1012: 'service restart', 1013: 'try again later',
  1014: 'bad gateway', 1015: 'TLS handshake failure',
};

/** The name RFC 6455 (and the IANA registry) gives a close code. */
export function closeCodeName(code) {
  if (code in CLOSE_CODE_NAMES) {
    return CLOSE_CODE_NAMES[code];
  }
  return code >= 3000 && code < 4000 ? 'registered' : code >= 4000 && code < 5000 ? 'private use' : 'unknown';
}

/** The lines of stdin (without their line ends), each as soon as it is read: `for (const line of stdinLines())`. */
export function* stdinLines() {
  const stdin = getStdin();
  const decoder = new TextDecoder();
  let pending = '';
  for (;;) {
    let chunk;
    try {
      chunk = stdin.blockingRead(65536n);
    } catch (e) {
      if (e && e.payload && e.payload.tag === 'closed') {
        break;
      }
      throw e;
    }
    pending += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = pending.indexOf('\n')) >= 0) {
      yield pending.slice(0, end).replace(/\r$/, '');
      pending = pending.slice(end + 1);
    }
  }
  pending += decoder.decode();
  if (pending !== '') {
    yield pending;
  }
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
  const failed = (e) => {
    console.error(`wsrun: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    if (e instanceof Error && e.stack) {
      console.error(e.stack.trimEnd());
    }
    exit(1);
  };
  return {
    run() {
      try {
        const done = body();
        // An async body (one that awaits fetch, say): the host waits for it, and its failure is reported alike.
        if (done && typeof done.then === 'function') {
          return done.catch(failed);
        }
      } catch (e) {
        failed(e);
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
  constructor(url, { headers = {}, subprotocols = [], compression = true } = {}) {
    const options = {
      headers: Object.entries(headers).map(([name, value]) => ({ name, value })),
      subprotocols,
      openTimeoutMs: undefined,
      maxMessageSize: undefined,
      controlFrames: false,
      keepalive: undefined,
      compression: compression ? 'offer' : 'off',
    };
    this.conn = host(() => Connection.connect(url, options));
  }

  get url() {
    return this.conn.url();
  }

  /** Whether messages travel compressed (the server took the offer of permessage-deflate). */
  get compressed() {
    return this.conn.compressed();
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

  /** `{ code, reason }` once closed, else null. */
  get closeStatus() {
    return this.conn.closeStatus() ?? null;
  }

  /** Messages until the connection closes: `for (const message of ws) ...` */
  *[Symbol.iterator]() {
    let message;
    while ((message = this.recv()) !== null) {
      yield message;
    }
  }
}
