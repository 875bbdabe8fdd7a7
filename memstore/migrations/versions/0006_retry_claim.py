"""One retry of a turn at a time: a retry claims the turn until it ends (or its claim runs out).

Two tabs pressing Retry on one failed turn made two paid calls and two replies.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("retry_turn", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("retry_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("retry_until")
        batch.drop_column("retry_turn")
