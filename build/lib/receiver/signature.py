"""Trello's webhook signature: base64(HMAC-SHA1(app secret, raw body + callback URL))."""

from __future__ import annotations

import base64
import hashlib
import hmac


class SignatureChecker:
    """Checks deliveries for one secret and callback URL, encoded once rather than per request."""

    def __init__(self, secret: str, callback_url: str) -> None:
        # `callback_url` must be the URL the webhook was registered with, never one rebuilt from the
        # request: a proxy may have changed scheme, host or path on the way in.
        self._secret = secret.encode()
        self._callback_url = callback_url.encode()

    def is_valid(self, body: bytes, signature: bytes) -> bool:
        """Constant-time check of `signature` (the header's raw bytes) against the one `body` should carry."""
        expected = base64.b64encode(_digest(self._secret, body, self._callback_url))
        return hmac.compare_digest(expected, signature)


def _digest(secret: bytes, body: bytes, callback_url: bytes) -> bytes:
    return hmac.digest(secret, body + callback_url, hashlib.sha1)
