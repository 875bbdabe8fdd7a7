"""Preferences can be switched off for the next turns without being deleted.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("preferences") as batch:
        batch.add_column(sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("preferences") as batch:
        batch.drop_column("enabled")
