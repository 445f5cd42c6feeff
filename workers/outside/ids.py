"""Ids that become parts of Trello and SCIM URLs: checked against the shape each API issues, then quoted.

A job's arguments come from Redis: whoever can write there must not be able to steer a call with the
admin token to any path (`../../organizations/<id>/members/<id>/all`). Every id a client puts in a path
passes through here first.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from workers.outside.errors import InvalidId

TRELLO_ID = re.compile(r"[0-9a-fA-F]{24}")  # Trello's object ids: 24 hex digits
SCIM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")  # Atlassian's are UUIDs; SCIM allows more


def trello_path(template: str, *ids: str) -> str:
    """`template` with each `{}` replaced by a Trello id, checked and quoted."""
    return template.format(*(_checked(TRELLO_ID, value, "Trello id") for value in ids))


def scim_path(template: str, *ids: str) -> str:
    return template.format(*(_checked(SCIM_ID, value, "SCIM id") for value in ids))


def _checked(shape: re.Pattern[str], value: object, what: str) -> str:
    if not isinstance(value, str) or not shape.fullmatch(value):
        raise InvalidId(f"not a {what}: {str(value)[:64]!r}")
    return quote(value, safe="")
