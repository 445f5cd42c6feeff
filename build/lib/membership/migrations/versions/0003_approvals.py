"""Pending approvals: held plans and SCIM deactivations waiting for an operator.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 22:32:26.247310
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_approvals",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=True),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_approvals")),
    )
    op.create_index("ix_pending_approvals_open", "pending_approvals", ["decided_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_pending_approvals_open", table_name="pending_approvals")
    op.drop_table("pending_approvals")
