"""Series: series the platform has flagged (series_seen) and analysts' decisions on them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 17:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "series_seen",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("death_ids", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("kinds", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("first_flagged_on", sa.Date(), nullable=True),
        sa.Column("first_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("grown_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("alerted_size", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("series_seen", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_series_seen_series_id"), ["series_id"], unique=True)
        batch_op.create_index(batch_op.f("ix_series_seen_status"), ["status"], unique=False)

    op.create_table(
        "series_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("decision", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("size_at_decision", sa.Integer(), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("series_decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_series_decisions_series_id"), ["series_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_series_decisions_decision"), ["decision"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("series_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_series_decisions_decision"))
        batch_op.drop_index(batch_op.f("ix_series_decisions_series_id"))
    op.drop_table("series_decisions")
    with op.batch_alter_table("series_seen", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_series_seen_status"))
        batch_op.drop_index(batch_op.f("ix_series_seen_series_id"))
    op.drop_table("series_seen")
