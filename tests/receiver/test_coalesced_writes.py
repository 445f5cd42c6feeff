"""The receiver's connections send what they write in one loop turn as one piece, and hold nothing
longer: a response's head and body leave together, a slow body does not hold its head back, and HTTP's
keep-alive, pipelining, `Expect: 100-continue` and `Connection: close` behave as before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from receiver.protocol import BoundedHttpToolsProtocol
from receiver.transport import MAX_HELD_BYTES, CoalescedTransport
from tests.support import free_port


class RecordingTransport(asyncio.Transport):
    """Stands in for the event loop's transport: records what reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0  # everything written went out at once


def coalesced() -> tuple[CoalescedTransport, RecordingTransport]:
    underneath = RecordingTransport()
    return CoalescedTransport(underneath, asyncio.get_running_loop()), underneath


async def test_writes_made_in_one_loop_turn_leave_in_one_send() -> None:
    transport, underneath = coalesced()
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"ok")
    assert underneath.writes == []
    await asyncio.sleep(0)
    assert underneath.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]


async def test_a_write_is_not_held_past_the_turn_it_was_made_in() -> None:
    transport, underneath = coalesced()
    transport.write(b"head")
    await asyncio.sleep(0)
    transport.write(b"body")
    await asyncio.sleep(0)
    assert underneath.writes == [b"head", b"body"]


async def test_closing_sends_what_is_held_before_it_closes() -> None:
    transport, underneath = coalesced()
    transport.write(b"last answer")
    transport.close()
    assert underneath.writes == [b"last answer"]
    assert underneath.closed
    await asyncio.sleep(0)
    assert underneath.writes == [b"last answer"]


async def test_a_write_that_makes_the_held_data_large_leaves_at_once() -> None:
    transport, underneath = coalesced()
    transport.write(b"head")
    transport.write(b"x" * MAX_HELD_BYTES)
    assert underneath.writes == [b"head" + b"x" * MAX_HELD_BYTES]
    assert transport.get_write_buffer_size() == 0


async def test_a_bytearray_is_copied_when_held_so_the_writer_may_reuse_it() -> None:
    transport, underneath = coalesced()
    buffer = bytearray(b"first")
    transport.write(buffer)
    buffer[:] = b"later"
    await asyncio.sleep(0)
    assert underneath.writes == [b"first"]


async def test_what_is_held_for_a_connection_already_closing_is_dropped() -> None:
    transport, underneath = coalesced()
    transport.write(b"too late")
    underneath.closed = True  # the client went away in the meantime
    await asyncio.sleep(0)
    assert underneath.writes == []


async def test_aborting_drops_what_is_held() -> None:
    transport, underneath = coalesced()
    transport.write(b"never sent")
    transport.abort()
    await asyncio.sleep(0)
    assert underneath.writes == []
    assert underneath.closed


# --- Through uvicorn: the receiver's protocol on a real socket, counting what reaches the socket.


class CountedTransport(RecordingTransport):
    """The real transport, with every write that reaches it counted."""

    def __init__(self, real: asyncio.Transport, sends: list[bytes]) -> None:
        super().__init__()
        self.real = real
        self.writes = sends

    def write(self, data: Any) -> None:
        super().write(data)
        self.real.write(data)

    def close(self) -> None:
        self.real.close()

    def is_closing(self) -> bool:
        return self.real.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.real.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self.real.pause_reading()

    def resume_reading(self) -> None:
        self.real.resume_reading()


@dataclass(frozen=True)
class EchoServer:
    port: int
    sends: list[bytes]  # every write that reached the socket
    release_body: asyncio.Event  # lets `/stream` send its body


def echo_app(release_body: asyncio.Event) -> ASGIApp:
    """`/stream`: the head, then the body once `release_body` is set; anything else: its body echoed."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]})
            await release_body.wait()
            await send({"type": "http.response.body", "body": b"late"})
            return
        answer = b"echo:" + body
        headers = [(b"content-length", b"%d" % len(answer))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    return app


@pytest.fixture
async def server() -> AsyncIterator[EchoServer]:
    """uvicorn on a real socket with the receiver's protocol, every write reaching the socket recorded."""
    sends: list[bytes] = []

    class Counted(BoundedHttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(CountedTransport(transport, sends))

    release_body = asyncio.Event()
    port = free_port()
    config = uvicorn.Config(echo_app(release_body), host="127.0.0.1", port=port, http=Counted,
                            lifespan="off", log_config=None, access_log=False)  # fmt: skip
    running = uvicorn.Server(config)
    task = asyncio.create_task(running.serve())
    while not running.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
        await asyncio.sleep(0.01)
    yield EchoServer(port, sends, release_body)
    running.should_exit = True
    await task


def post(path: str, body: bytes, *extra: bytes) -> bytes:
    head = b"POST %s HTTP/1.1\r\nhost: test\r\ncontent-length: %d\r\n" % (path.encode(), len(body))
    return head + b"".join(header + b"\r\n" for header in extra) + b"\r\n" + body


async def read_responses(reader: asyncio.StreamReader, count: int) -> list[bytes]:
    """`count` whole responses (head and content-length body each) from the stream."""
    responses = []
    for _ in range(count):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        lines = head.split(b"\r\n")
        length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
        responses.append(head + await asyncio.wait_for(reader.readexactly(length), 5))
    return responses


async def test_each_answer_on_a_kept_alive_connection_leaves_in_one_send(server: EchoServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    for number in range(3):
        writer.write(post("/", b"%d" % number))
        (response,) = await read_responses(reader, 1)
        assert response.endswith(b"echo:%d" % number)
    writer.close()
    assert len(server.sends) == 3
    assert all(send.startswith(b"HTTP/1.1 200 OK") for send in server.sends)


async def test_pipelined_requests_are_answered_whole_and_in_order(server: EchoServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"".join(post("/", b"%d" % number) for number in range(5)))
    responses = await read_responses(reader, 5)
    writer.close()
    bodies = [response.rsplit(b"\r\n\r\n", 1)[1] for response in responses]
    assert bodies == [b"echo:%d" % number for number in range(5)]


async def test_a_head_is_not_held_back_while_its_body_is_slow(server: EchoServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(post("/stream", b""))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200 OK")
    server.release_body.set()
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"late"
    writer.close()


async def test_expect_100_continue_is_answered_before_the_client_sends_the_body(server: EchoServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST / HTTP/1.1\r\nhost: test\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n")
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"hello")
    (response,) = await read_responses(reader, 1)
    assert response.endswith(b"echo:hello")
    writer.close()


async def test_connection_close_gets_the_whole_answer_before_the_connection_ends(server: EchoServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(post("/", b"bye", b"connection: close"))
    everything = await asyncio.wait_for(reader.read(), 5)  # to the end of the stream: the server closed it
    assert everything.startswith(b"HTTP/1.1 200 OK")
    assert everything.endswith(b"echo:bye")
    writer.close()
