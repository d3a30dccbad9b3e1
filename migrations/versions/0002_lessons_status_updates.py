"""Lessons: operator status updates of review recommendations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 16:13:46.656963+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recommendation_status_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("recommendation_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status_updated_on", sa.Date(), nullable=False),
        sa.Column("changed_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("evidence", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("recorded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("recommendation_status_updates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recommendation_status_updates_recommendation_id"),
            ["recommendation_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_recommendation_status_updates_review_id"), ["review_id"], unique=False
        )



def downgrade() -> None:
    with op.batch_alter_table("recommendation_status_updates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recommendation_status_updates_review_id"))
        batch_op.drop_index(batch_op.f("ix_recommendation_status_updates_recommendation_id"))

    op.drop_table("recommendation_status_updates")
