"""The event log: every Trello action recorded once.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "event_log",
        sa.Column("id", AutoId, primary_key=True, autoincrement=True),
        sa.Column("action_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(64), nullable=True),
        sa.Column("action_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_log")),
        sa.UniqueConstraint("action_id", name=op.f("uq_event_log_action_id")),
    )
    op.create_index("ix_event_log_action_date", "event_log", ["action_date"])


def downgrade() -> None:
    op.drop_index("ix_event_log_action_date", table_name="event_log")
    op.drop_table("event_log")
