"""Trello's webhook signature: base64(HMAC-SHA1(app secret, body + callback URL)), in either encoding.

Trello signs the body as UTF-8 bytes today. Its webhook guide once said the signed text was a "binary"
string: each UTF-16 code unit of the text cut to its low 8 bits (an en dash, U+2013, as the byte 0x13),
and older integrations still sign that way. A delivery is accepted when its signature matches either
form: the UTF-8 one first, the other only when the body is not ASCII (for ASCII the two are the same
bytes). Neither can be made without the secret, and both are compared in constant time.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from typing import Literal

Encoding = Literal["utf-8", "binary"]


class SignatureChecker:
    """Checks deliveries for one secret and callback URL, encoded once rather than per request."""

    def __init__(self, secret: str, callback_url: str) -> None:
        # `callback_url` must be the URL the webhook was registered with, never one rebuilt from the
        # request: a proxy may have changed scheme, host or path on the way in.
        self._secret = secret.encode()
        self._callback_url = callback_url.encode()
        self._binary_callback_url = binary_string(callback_url)

    def match(self, body: bytes, signature: bytes) -> Encoding | None:
        """Which encoding of `body` the `signature` (the header's raw bytes) was made over; None when it
        is neither's."""
        if hmac.compare_digest(_sign(self._secret, body + self._callback_url), signature):
            return "utf-8"
        if body.isascii():
            return None
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return None
        signed = binary_string(text) + self._binary_callback_url
        return "binary" if hmac.compare_digest(_sign(self._secret, signed), signature) else None

    def is_valid(self, body: bytes, signature: bytes) -> bool:
        return self.match(body, signature) is not None


def binary_string(text: str) -> bytes:
    """`text` as a JavaScript "binary" string: every UTF-16 code unit cut to its low 8 bits (a
    character beyond the Basic Multilingual Plane is two code units, so two bytes)."""
    return text.encode("utf-16-le")[0::2]


def _sign(secret: bytes, message: bytes) -> bytes:
    # binascii rather than base64.b64encode, which only wraps it: this runs for every delivery.
    return binascii.b2a_base64(hmac.digest(secret, message, hashlib.sha1), newline=False)
