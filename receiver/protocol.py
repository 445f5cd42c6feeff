"""The receiver's HTTP protocol: uvicorn's httptools parser, bounded before any route is reached, its
writes coalesced (`receiver.transport`).

uvicorn bounds neither how long a client may take to send a request's headers nor (with httptools)
how large they may grow: four connections each streaming an endless header line held hundreds of
megabytes, and a few dozen connections sending a header line every ten seconds held their sockets for
minutes. Here each request's head (request line and headers) must arrive within `head_timeout` seconds
and `max_head_bytes` bytes, or the connection is answered 408 or 431 and closed. Bodies are bounded
further in (`receiver.bodies`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from receiver.transport import CoalescedTransport

HEAD_TIMEOUT_SECONDS = 10.0
MAX_HEAD_BYTES = 64 * 1024


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    head_timeout: float = HEAD_TIMEOUT_SECONDS
    max_head_bytes: int = MAX_HEAD_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        # When the head now awaited is due; None while no head is awaited. One timer a connection checks
        # it, re-armed only when it fires: a timer set and cancelled for every request was 2 % of the
        # receiver's CPU a delivery in a profile.
        self._head_due: float | None = None
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescedTransport(transport, self.loop))
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_due = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_due is not None:  # still reading a head
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse(431, "Request Header Fields Too Large")
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._head_due = None
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_head()  # the next request on this connection has the same bounds

    def _await_head(self) -> None:
        self._head_bytes = 0
        self._head_due = self.loop.time() + self.head_timeout
        if self._head_timer is None:
            self._head_timer = self.loop.call_at(self._head_due, self._check_head)

    def _check_head(self) -> None:
        self._head_timer = None
        due = self._head_due
        if due is None:
            return  # no head awaited now: the next one arms the timer again
        if self.loop.time() < due:
            self._head_timer = self.loop.call_at(due, self._check_head)  # a later head is awaited
            return
        self._head_due = None
        if self._head_bytes == 0:
            self.transport.close()  # an idle connection that sent nothing: just closed
            return
        self._refuse(408, "Request Timeout")

    def _refuse(self, status: int, reason: str) -> None:
        self._head_due = None
        body = reason.encode()
        head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {len(body)}\r\n"
        self.transport.write(head.encode() + b"connection: close\r\n\r\n" + body)
        self.transport.close()


def bounded_protocol(head_timeout: float, max_head_bytes: int) -> type[BoundedHttpToolsProtocol]:
    """The protocol class with these bounds, for `uvicorn.Config(http=...)`."""
    return type(
        "ReceiverHttpProtocol",
        (BoundedHttpToolsProtocol,),
        {"head_timeout": head_timeout, "max_head_bytes": max_head_bytes},
    )
