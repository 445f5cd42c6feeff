"""What can go wrong talking to Trello and SCIM, as one family each, like httpx's HTTPError family.

Messages name the method and path, never the key, token or bearer token (they travel in headers only).
Whether an error may pass (its `transient` flag) decides, in one place, whether it is retried.
"""

from __future__ import annotations

from collections.abc import Iterable

REDACTED = "[REDACTED]"


def redacted(text: str, secrets: Iterable[str]) -> str:
    """`text` with each secret replaced: an upstream's error text can echo the request, and Trello's
    `/tokens/{token}/...` paths carry the token. Messages are stored (dead letters, approvals, the audit
    log) and printed (`trellis doctor`): they are scrubbed where they are made."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class RemoteError(Exception):
    """A call to an outside API failed."""

    transient = False

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body[:500]


class TrelloError(RemoteError):
    """A Trello REST call failed."""


class InvalidId(RemoteError):
    """An id that would become part of a Trello or SCIM URL does not have the shape of one (a job planted
    in Redis, say, naming `../../organizations/...`): never sent, never retried."""


class TrelloNotFound(TrelloError):
    """Unknown id ("invalid id"), or a membership that is not there."""


class TrelloUnauthorized(TrelloError):
    """Bad, expired or revoked token, bad key, or a permission the token lacks."""


class TrelloTokenExpired(TrelloUnauthorized):
    pass


class TrelloForbidden(TrelloError):
    """Trello refused the change."""


class ObserversNotAllowed(TrelloForbidden):
    """The observer role needs a Premium or Enterprise workspace."""


class LastAdmin(TrelloForbidden):
    """Removing or demoting a board's (or workspace's) last admin: "Not enough admins"."""


class TrelloBadRequest(TrelloError):
    pass


class InviteeNotIdentified(TrelloError):
    """Trello took an invitation, but its answer does not tell which of the workspace's members is the
    invitee (someone else joined at the same moment): the change stays pending and is tried again."""

    transient = True


class TrelloRateLimited(TrelloError):
    """429: the limiter pauses every worker; the call is tried again after the pause."""

    transient = True


class TrelloServerError(TrelloError):
    transient = True


class TrelloUnavailable(TrelloError):
    """No answer: timeout, refused or dropped connection."""

    transient = True


class ScimError(RemoteError):
    """An Atlassian SCIM call failed; `detail` is the SCIM error's own explanation."""


class ScimNotFound(ScimError):
    pass


class ScimConflict(ScimError):
    """The user exists already (409)."""


class ScimUnauthorized(ScimError):
    pass


class ScimRateLimited(ScimError):
    transient = True


class ScimServerError(ScimError):
    transient = True


class ScimUnavailable(ScimError):
    transient = True


# Answers that say "not there": an unknown id, or a membership that is gone ("invalid id", 400 or 404).
# For a removal that is the outcome asked for.
ABSENT: tuple[type[TrelloError], ...] = (TrelloBadRequest, TrelloNotFound)
# Answers that will not change if the same request is sent again: recorded and reported, never retried.
REFUSALS: tuple[type[TrelloError], ...] = (*ABSENT, TrelloForbidden)
