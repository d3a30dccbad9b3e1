"""Initial store: deliveries ledger, receipts, quarantine.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 16:12:11.178710+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("partner_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("feed", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("file_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("extension", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("extract_date", sa.Date(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("archive_path", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("rows_read", sa.Integer(), nullable=True),
        sa.Column("rows_staged", sa.Integer(), nullable=True),
        sa.Column("rows_quarantined", sa.Integer(), nullable=True),
        sa.Column("rows_superseded", sa.Integer(), nullable=True),
        sa.Column("columns_dropped", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("parsed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("staged_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deliveries_delivery_id"), ["delivery_id"], unique=True)
        batch_op.create_index(batch_op.f("ix_deliveries_feed"), ["feed"], unique=False)
        batch_op.create_index(batch_op.f("ix_deliveries_partner_id"), ["partner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deliveries_sha256"), ["sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_deliveries_status"), ["status"], unique=False)

    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("delivery_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("partner_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("feed", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("file_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("column", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("rule", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("quarantine_path", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quarantine_delivery_id"), ["delivery_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_quarantine_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_quarantine_partner_id"), ["partner_id"], unique=False)

    op.create_table(
        "receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("partner_folder", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("delivery_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_receipts_delivery_id"), ["delivery_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_receipts_sha256"), ["sha256"], unique=False)



def downgrade() -> None:
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_receipts_sha256"))
        batch_op.drop_index(batch_op.f("ix_receipts_delivery_id"))

    op.drop_table("receipts")
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantine_partner_id"))
        batch_op.drop_index(batch_op.f("ix_quarantine_kind"))
        batch_op.drop_index(batch_op.f("ix_quarantine_delivery_id"))

    op.drop_table("quarantine")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_status"))
        batch_op.drop_index(batch_op.f("ix_deliveries_sha256"))
        batch_op.drop_index(batch_op.f("ix_deliveries_partner_id"))
        batch_op.drop_index(batch_op.f("ix_deliveries_feed"))
        batch_op.drop_index(batch_op.f("ix_deliveries_delivery_id"))

    op.drop_table("deliveries")
