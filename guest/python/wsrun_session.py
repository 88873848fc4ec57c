"""A small Pythonic layer over wsrun's `websocket` interface: a WebSocket class with send, recv(timeout=...),
close(), close_status and iteration over messages, plus the guest's arguments and exit code and close codes in
words. The generated bindings (wit_world) are used as they are, never edited. This file is also the helper of
`wsrun new python` projects (the wsrun binary embeds it)."""

import re
import sys
import traceback
from typing import Callable, Iterator, List, Optional, Union

from componentize_py_types import Err
from wit_world.imports import environment, exit as wasi_exit, monotonic_clock, poll
from wit_world.imports.websocket import (
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


class WebSocket:
    """One connection, opened by the host on the guest's behalf."""

    def __init__(self, url: str, headers: Optional[dict] = None, subprotocols: Optional[List[str]] = None):
        options = ConnectOptions(
            headers=[Header(name, value) for name, value in (headers or {}).items()],
            subprotocols=subprotocols or [],
            open_timeout_ms=None,
            max_message_size=None,
            control_frames=False,
            keepalive=None,
        )
        try:
            self._conn = Connection.connect(url, options)
        except Err as e:
            raise WebSocketError(e.value) from None

    @property
    def url(self) -> str:
        return self._conn.url()

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
