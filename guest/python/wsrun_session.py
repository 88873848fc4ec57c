"""A small Pythonic layer over wsrun's `websocket` interface: a WebSocket class with send, recv(timeout=...),
close(), close_status and iteration over messages, plus the guest's arguments and exit code and close codes in
words, `metrics` for the run's summary and thresholds, and `http_request` for the HTTP call that often comes first (a token, the URL to connect to). The generated bindings (wit_world) are used as they are, never edited. This file is also the helper of
`wsrun new python` projects (the wsrun binary embeds it)."""

import re
import sys
import traceback
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

from componentize_py_types import Err, Ok
from wit_world.imports import environment, exit as wasi_exit, monotonic_clock, outgoing_handler, poll
from wit_world.imports import metrics as _metrics
from wit_world.imports import types as http
from wit_world.imports.streams import StreamError_Closed, StreamError_LastOperationFailed
from wit_world.imports.websocket import (
    Compression,
    ConnectOptions,
    Connection,
    Header,
    Message_Binary,
    Message_Ping,
    Message_Pong,
    Message_Text,
)

Data = Union[str, bytes]


class WebSocketError(Exception):
    """A failure the host reported: `code` is the WIT `error-code` value."""

    def __init__(self, code):
        self.code = code
        super().__init__(describe(code))


def describe(code) -> str:
    """One line for an `error-code` value: its WIT case and its detail, as `refused: 127.0.0.1:9000`."""
    kind = re.sub(r"(?<!^)(?=[A-Z])", "-", type(code).__name__.removeprefix("ErrorCode_")).lower()
    detail = getattr(code, "value", None)
    if kind == "http-status":
        # The server's own explanation, when it gave one: the body's first line, cut.
        lines = [line.strip() for line in bytes(detail.body).decode("utf-8", "replace").splitlines() if line.strip()]
        detail = f"{detail.status} {detail.reason}" + (f": {lines[0][:200]}" if lines else "")
    return f"{kind}: {detail}" if detail is not None else kind


def describe_close(status) -> str:
    """A `close_status` as people read it: `1000 (OK)`, or `4001 (bye)` when the peer gave a reason."""
    if status is None:
        return "still open"
    code, reason = status
    return f"{code} ({reason or close_code_name(code)})"


def close_code_name(code: int) -> str:
    """The name RFC 6455 (and the IANA registry) gives a close code."""
    if code in _CLOSE_CODE_NAMES:
        return _CLOSE_CODE_NAMES[code]
    return "registered" if 3000 <= code < 4000 else "private use" if 4000 <= code < 5000 else "unknown"


_CLOSE_CODE_NAMES = {
    1000: "OK", 1001: "going away", 1002: "protocol error", 1003: "unsupported data", 1005: "no status received",
    1006: "abnormal closure", 1007: "invalid frame payload data", 1008: "policy violation", 1009: "message too big",
    1010: "mandatory extension", 1011: "internal error", 1012: "service restart", 1013: "try again later",
    1014: "bad gateway", 1015: "TLS handshake failure",
}


def args() -> List[str]:
    """The guest's arguments: [name, URL, guest args...]."""
    return environment.get_arguments()


def exit(code: int) -> None:
    """End the guest now with this exit code (wsrun exits with it)."""
    wasi_exit.exit_with_code(code)


def guest(run: Callable) -> Callable:
    """Decorate `Run.run`: `raise SystemExit(n)` exits with n, and an uncaught exception becomes one
    `wsrun: ...` line plus the script's traceback and exit code 1, instead of a trap deep in the interpreter."""

    def guarded(self) -> None:
        try:
            run(self)
        except SystemExit as e:
            exit(e.code if isinstance(e.code, int) else (0 if e.code is None else 1))
        except BaseException as e:
            print(f"wsrun: {type(e).__name__}: {e}", file=sys.stderr)
            traceback.print_exc()
            sys.stderr.flush()
            exit(1)

    return guarded


class Metrics:
    """The guest's own measurements, for the run's summary, --report and --threshold (`wsrun:ws/metrics`). Tags
    are a dict: `metrics.duration("rtt", 0.0021, {"kind": "echo"})`. Recording never fails: what the host does not
    keep (a malformed name, past its cap) it counts as dropped."""

    @staticmethod
    def _tags(tags: Optional[Dict[str, str]]) -> list:
        return [_metrics.Tag(name=name, value=str(value)) for name, value in (tags or {}).items()]

    def count(self, name: str, delta: int = 1, tags: Optional[Dict[str, str]] = None) -> None:
        """Add `delta` to the counter `name`."""
        _metrics.count(name, delta, self._tags(tags))

    def duration(self, name: str, seconds: float, tags: Optional[Dict[str, str]] = None) -> None:
        """Record a duration, in seconds, in the trend `name`."""
        _metrics.duration(name, max(0, int(seconds * 1e9)), self._tags(tags))

    def value(self, name: str, value: int, tags: Optional[Dict[str, str]] = None) -> None:
        """Record a plain value (a size, a count) in the trend `name`."""
        _metrics.value(name, max(0, int(value)), self._tags(tags))

    def rate(self, name: str, hit: bool, tags: Optional[Dict[str, str]] = None) -> None:
        """Count an event of the rate `name`, a hit or not."""
        _metrics.rate(name, bool(hit), self._tags(tags))

    def check(self, name: str, passed: bool, tags: Optional[Dict[str, str]] = None) -> bool:
        """Record the check `name`'s outcome, and return it."""
        _metrics.check(name, bool(passed), self._tags(tags))
        return bool(passed)


metrics = Metrics()


class WebSocket:
    """One connection, opened by the host on the guest's behalf."""

    def __init__(self, url: str, headers: Optional[dict] = None, subprotocols: Optional[List[str]] = None,
                 compression: bool = True):
        options = ConnectOptions(
            headers=[Header(name, value) for name, value in (headers or {}).items()],
            subprotocols=subprotocols or [],
            open_timeout_ms=None,
            max_message_size=None,
            control_frames=False,
            keepalive=None,
            compression=Compression.OFFER if compression else Compression.OFF,
        )
        try:
            self._conn = Connection.connect(url, options)
        except Err as e:
            raise WebSocketError(e.value) from None

    @property
    def url(self) -> str:
        return self._conn.url()

    @property
    def compressed(self) -> bool:
        """Whether messages travel compressed (the server took the offer of permessage-deflate)."""
        return self._conn.compressed()

    def send(self, data: Data) -> None:
        message = Message_Text(data) if isinstance(data, str) else Message_Binary(bytes(data))
        try:
            self._conn.send(message)
        except Err as e:
            raise WebSocketError(e.value) from None

    def recv(self, timeout: Optional[float] = None) -> Optional[Data]:
        """The next message (str or bytes), or None once the connection has closed. With `timeout` (seconds),
        raises TimeoutError when nothing came in time."""
        if timeout is not None:
            with self._conn.subscribe() as ready, monotonic_clock.subscribe_duration(int(timeout * 1e9)) as timer:
                if 0 not in poll.poll([ready, timer]):
                    raise TimeoutError(f"no message within {timeout}s")
        try:
            message = self._conn.receive()
        except Err as e:
            raise WebSocketError(e.value) from None
        if message is None:
            return None
        if isinstance(message, (Message_Ping, Message_Pong)):
            return self.recv(timeout)
        return message.value

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (messages still arriving can be read until recv returns None)."""
        try:
            self._conn.close(code, reason)
        except Err:
            pass

    @property
    def close_status(self):
        """(code, reason) once closed, else None."""
        frame = self._conn.close_status()
        return None if frame is None else (frame.code, frame.reason)

    def __iter__(self) -> Iterator[Data]:
        while (message := self.recv()) is not None:
            yield message

    def __enter__(self) -> "WebSocket":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class HttpError(Exception):
    """An HTTP request failed. `code` is the wasi:http `error-code` (`ErrorCode_HttpRequestDenied` when the grant
    refused it, ...), or None when the host gave only words (a body's failures)."""

    def __init__(self, code, text: Optional[str] = None):
        self.code = code
        super().__init__(text if text is not None else type(code).__name__.removeprefix("ErrorCode_"))


class HttpResponse:
    """A whole response: `status`, `headers` (lower-case names, in order) and `body` (bytes)."""

    def __init__(self, status: int, headers: List[Tuple[str, bytes]], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> Optional[str]:
        """The first value of header `name` (any case), decoded."""
        for key, value in self.headers:
            if key == name.lower():
                return value.decode("utf-8", "replace")
        return None

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


_METHODS = {
    "GET": http.Method_Get, "HEAD": http.Method_Head, "POST": http.Method_Post, "PUT": http.Method_Put,
    "DELETE": http.Method_Delete, "OPTIONS": http.Method_Options, "PATCH": http.Method_Patch,
}


def http_request(method: str, url: str, headers: Optional[Dict[str, str]] = None, body: Data = b"",
                 timeout: Optional[float] = None) -> HttpResponse:
    """Send one request through the host and read the whole response, blocking. The host sends it only within the
    session's grant (`wsrun --allow http://host:port`), follows no redirect (a 3xx comes back; following it is a
    new request, checked again) and bounds bodies and times. Raises HttpError."""
    match = re.match(r"^(https?)://([^/?#]+)([^#]*)", url, re.IGNORECASE)
    if not match:
        raise HttpError(None, f"invalid URL {url!r}: expected http:// or https:// and a host")
    scheme, authority, path = match.group(1).lower(), match.group(2), match.group(3) or "/"
    if not path.startswith("/"):
        path = "/" + path
    payload = body.encode() if isinstance(body, str) else body
    fields = http.Fields()
    try:
        for name, value in (headers or {}).items():
            fields.append(name, value.encode())
        if payload or method.upper() in ("POST", "PUT", "PATCH"):
            if not any(name.lower() == "content-length" for name in (headers or {})):
                fields.append("content-length", str(len(payload)).encode())
    except Err as e:
        raise HttpError(None, f"header refused: {type(e.value).__name__}")
    request = http.OutgoingRequest(fields)
    request.set_method(_METHODS.get(method.upper(), lambda: http.Method_Other(method.upper()))())
    request.set_scheme(http.Scheme_Https() if scheme == "https" else http.Scheme_Http())
    request.set_authority(authority)
    request.set_path_with_query(path)
    outgoing = request.body()
    options = None
    if timeout is not None:
        options = http.RequestOptions()
        nanos = int(timeout * 1e9)
        options.set_connect_timeout(nanos)
        options.set_first_byte_timeout(nanos)
        options.set_between_bytes_timeout(nanos)
    try:
        pending = outgoing_handler.handle(request, options)
    except Err as e:
        raise HttpError(e.value)
    # Written once the request is on its way: the host takes the body as it goes out.
    with outgoing.write() as stream:
        try:
            for at in range(0, len(payload), 4096):
                stream.blocking_write_and_flush(payload[at:at + 4096])
        except Err as e:
            raise _stream_error(e.value)
    try:
        http.OutgoingBody.finish(outgoing, None)
    except Err as e:
        raise HttpError(e.value)
    pending.subscribe().block()
    result = pending.get()
    if result is None or isinstance(result, Err) or isinstance(result.value, Err):
        code = result.value.value if result is not None and isinstance(result.value, Err) else None
        raise HttpError(code, None if code is not None else "no response")
    response = result.value.value
    status = response.status()
    response_headers = [(name.lower(), value) for name, value in response.headers().entries()]
    incoming = response.consume()
    chunks = []
    with incoming.stream() as body_stream:
        while True:
            try:
                chunks.append(body_stream.blocking_read(65536))
            except Err as e:
                if isinstance(e.value, StreamError_Closed):
                    break
                raise _stream_error(e.value)
    http.IncomingBody.finish(incoming)
    return HttpResponse(status, response_headers, b"".join(chunks))


def _stream_error(error) -> HttpError:
    if isinstance(error, StreamError_LastOperationFailed):
        code = http.http_error_code(error.value)
        # wasmtime-wasi-http 48 gives a body's failures no error-code: its words, then.
        return HttpError(code, None if code is not None else f"the body failed: {error.value.to_debug_string()}")
    return HttpError(None, "the body ended early")
