"""Emails in one form: Unicode NFKC, then casefold, as every entry point now normalises them.

Stored emails were only lowercased, while invites were accepted by casefold: `straße@` and `strasse@`
were two users to the store and one person to an invite. Each stored email is rewritten in the one
form; where two users (or two pending invites of one organization) would become the same email, both
are left as they are and the collision is reported, for a person to merge or remove.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 00:40:00
"""

import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def normalised(email: str) -> str:
    return unicodedata.normalize("NFKC", email.strip()).casefold()


def upgrade() -> None:
    bind = op.get_bind()
    users = bind.execute(sa.text("SELECT id, email FROM users WHERE email IS NOT NULL")).all()
    _rewrite(bind, "users", {row.id: row.email for row in users}, lambda row_id: "users")
    invites = bind.execute(
        sa.text("SELECT id, organization_id, email FROM invites WHERE accepted_at IS NULL")
    ).all()
    scope = {row.id: f"invites of organization {row.organization_id}" for row in invites}
    _rewrite(bind, "invites", {row.id: row.email for row in invites}, scope.__getitem__)


def _rewrite(bind: sa.Connection, table: str, emails: dict[int, str], scope_of: Callable[[int], str]) -> None:
    rows = sa.table(table, sa.column("id"), sa.column("email"))
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row_id, email in emails.items():
        groups[(scope_of(row_id), normalised(email))].append(row_id)
    for (scope, email), ids in groups.items():
        if len(ids) > 1:
            print(f"0006: not normalised, {scope} {sorted(ids)} would all become {email!r}: merge them")
            continue
        [row_id] = ids
        if emails[row_id] != email:
            bind.execute(rows.update().where(rows.c.id == row_id).values(email=email))


def downgrade() -> None:
    pass  # the old form cannot be told back from the new; the new is a valid old one
