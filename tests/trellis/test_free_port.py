"""`free_port`: ports for child processes, each handed out once."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from types import TracebackType

import pytest

from trellis import supervisor


class ScriptedSocket:
    """A socket whose kernel offers the ports of a script, in turn, as bind(0) would."""

    offers: Iterator[int]

    def __init__(self) -> None:
        self.port = 0

    def __enter__(self) -> ScriptedSocket:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        pass

    def bind(self, address: tuple[str, int]) -> None:
        self.port = next(self.offers)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


def test_a_port_nothing_listens_on_can_be_bound() -> None:
    port = supervisor.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_a_port_the_kernel_offers_twice_is_handed_out_once(monkeypatch: pytest.MonkeyPatch) -> None:
    ScriptedSocket.offers = iter([61001, 61001, 61003])
    monkeypatch.setattr(supervisor, "_handed_out", set())
    monkeypatch.setattr(supervisor.socket, "socket", ScriptedSocket)
    assert [supervisor.free_port(), supervisor.free_port()] == [61001, 61003]
