"""Reading a request body with a bound, for every endpoint of the receiver."""

from __future__ import annotations

from starlette.types import Receive


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


async def read_bounded(headers: list[tuple[bytes, bytes]], receive: Receive, limit: int) -> bytes:
    """The raw body, refusing at once anything past `limit` bytes rather than reading it into memory."""
    for name, value in headers:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
