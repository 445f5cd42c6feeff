"""The audit log names whom and what each change is about: user, Trello member, board.

Rows written before are given what can be told from the rows themselves: the board of a board's entries
(its own and its reconciles'), and the user of a membership that still exists. The rest stay without:
`trellis audit` still shows them unfiltered and by organization.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as table:
        table.add_column(sa.Column("user_id", sa.BigInteger(), nullable=True))
        table.add_column(sa.Column("trello_member_id", sa.String(64), nullable=True))
        table.add_column(sa.Column("board_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_audit_log_user_at", "audit_log", ["user_id", "at"])
    op.create_index("ix_audit_log_trello_member_at", "audit_log", ["trello_member_id", "at"])
    op.create_index("ix_audit_log_board_at", "audit_log", ["board_id", "at"])
    op.execute("UPDATE audit_log SET board_id = entity_id WHERE entity IN ('board', 'trello_board')")
    op.execute(
        "UPDATE audit_log SET user_id ="
        " (SELECT user_id FROM memberships WHERE memberships.id = audit_log.entity_id)"
        " WHERE entity = 'membership'"
    )


def downgrade() -> None:
    op.drop_index("ix_audit_log_board_at", "audit_log")
    op.drop_index("ix_audit_log_trello_member_at", "audit_log")
    op.drop_index("ix_audit_log_user_at", "audit_log")
    with op.batch_alter_table("audit_log") as table:
        table.drop_column("board_id")
        table.drop_column("trello_member_id")
        table.drop_column("user_id")
