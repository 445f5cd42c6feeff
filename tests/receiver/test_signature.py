"""The signature check agrees with an implementation that shares nothing with ours: openssl's."""

from __future__ import annotations

import base64
import shutil
import subprocess

import pytest

from receiver.signature import SignatureChecker

SECRET = "app-secret-ÿ"
URL = "https://trellis.example.com/webhooks/trello"
BODY = '{"action":{"id":"5e9f8f8f8f8f8f8f8f8f8f8f","type":"addMemberToBoard","name":"Žofie 山田"}}'.encode()


def openssl_signature(secret: str, message: bytes) -> str:
    digest = subprocess.run(
        ["openssl", "dgst", "-sha1", "-hmac", secret, "-binary"],
        input=message,
        capture_output=True,
        check=True,
    ).stdout
    return base64.b64encode(digest).decode()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_signature_made_by_openssl_over_body_and_url_is_valid() -> None:
    expected = openssl_signature(SECRET, BODY + URL.encode())
    assert SignatureChecker(SECRET, URL).is_valid(BODY, expected.encode())


def test_signature_over_the_body_alone_is_not_valid() -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    assert not SignatureChecker(SECRET, URL).is_valid(BODY, openssl_signature(SECRET, BODY).encode())


def test_non_ascii_signature_header_is_refused_not_crashed() -> None:
    assert not SignatureChecker(SECRET, URL).is_valid(BODY, "ÿÿÿ=".encode("latin-1"))
