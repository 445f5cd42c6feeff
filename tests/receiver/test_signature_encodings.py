"""Signatures over text in any script: the UTF-8 form Trello signs today and the "binary" form its old
guide described (each UTF-16 code unit cut to its low 8 bits) are both accepted, and told apart."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from receiver.signature import SignatureChecker

SECRET = "app-secret"
URL = "https://trellis.example.com/webhooks/trello"
NAMES = {
    "latin with accents": "Zoë Çelik, Ångström",
    "en dash": "Q3 \u2013 roadmap",
    "cjk": "山田 太郎の計画",
    "emoji beyond the BMP": "Launch 🚀 board",
    "ascii": "Roadmap",
}


def body_naming(name: str) -> bytes:
    action = {"id": "5e9f8f8f8f8f8f8f8f8f8f8f", "type": "addMemberToBoard", "data": {"board": {"name": name}}}
    return json.dumps({"action": action}, ensure_ascii=False).encode()


def javascript_binary(text: str) -> bytes:
    """What a JavaScript `Buffer.from(text, "binary")` holds: built code unit by code unit, by hand."""
    units: list[int] = []
    for char in text:
        point = ord(char)
        if point > 0xFFFF:  # a surrogate pair
            point -= 0x10000
            units += [0xD800 + (point >> 10), 0xDC00 + (point & 0x3FF)]
        else:
            units.append(point)
    return bytes(unit & 0xFF for unit in units)


def sign(message: bytes) -> bytes:
    return base64.b64encode(hmac.new(SECRET.encode(), message, hashlib.sha1).digest())


@pytest.mark.parametrize("name", NAMES.values(), ids=NAMES.keys())
def test_a_utf8_signature_is_accepted_as_utf8(name: str) -> None:
    body = body_naming(name)
    assert SignatureChecker(SECRET, URL).match(body, sign(body + URL.encode())) == "utf-8"


@pytest.mark.parametrize("name", [n for n in NAMES.values() if not n.isascii()])
def test_a_binary_signature_is_accepted_as_binary(name: str) -> None:
    body = body_naming(name)
    signature = sign(javascript_binary(body.decode() + URL))
    assert SignatureChecker(SECRET, URL).match(body, signature) == "binary"


def test_for_ascii_the_two_forms_are_one_and_match_as_utf8() -> None:
    body = body_naming("Roadmap")
    assert javascript_binary(body.decode()) == body
    assert SignatureChecker(SECRET, URL).match(body, sign(body + URL.encode())) == "utf-8"


@pytest.mark.parametrize("name", NAMES.values(), ids=NAMES.keys())
def test_a_signature_made_with_another_secret_matches_neither(name: str) -> None:
    body = body_naming(name)
    forged = base64.b64encode(hmac.new(b"guess", body + URL.encode(), hashlib.sha1).digest())
    binary = base64.b64encode(
        hmac.new(b"guess", javascript_binary(body.decode() + URL), hashlib.sha1).digest()
    )
    checker = SignatureChecker(SECRET, URL)
    assert checker.match(body, forged) is None
    assert checker.match(body, binary) is None


def test_a_body_that_is_not_utf8_matches_nothing_and_does_not_crash() -> None:
    body = b'{"action": "\xff\xfe"}'
    assert SignatureChecker(SECRET, URL).match(body, sign(body + URL.encode())) == "utf-8"  # bytes as sent
    assert SignatureChecker(SECRET, URL).match(body, sign(b"other" + URL.encode())) is None
