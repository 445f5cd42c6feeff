"""Trello's webhook signature: base64(HMAC-SHA1(app secret, raw body + callback URL))."""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign(secret: str, body: bytes, callback_url: str) -> str:
    digest = hmac.new(secret.encode(), body + callback_url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def is_valid(secret: str, body: bytes, callback_url: str, signature: str) -> bool:
    """Constant-time check of `signature` against the one `body` should carry.

    `callback_url` must be the URL the webhook was registered with, never one rebuilt from the request:
    a proxy may have changed scheme, host or path on the way in.
    """
    expected = sign(secret, body, callback_url).encode()
    return hmac.compare_digest(expected, signature.encode())
