"""The database's own random id, so an outbox item is saved only into the database that refused it.

The table starts empty: the store gives the id when it first opens a database with none (see
SqlBase.identity). An id filled here would be copied into every new SQLite file, since new files
start as a copy of one migrated template per process; given at open, each database gets its own,
existing ones included.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "database_identity",
        sa.Column("one", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("database_identity")
