"""Clear a conversation's memory and keep its transcript: memory reads start at memory_from_turn.

Clearing moves the start past the newest turn (summaries, entity notes, recall and the window
start over); nothing is deleted, so it can be undone until the next turn (memory_undo_from).

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN: a batch rebuild of conversations on SQLite would drop the table, and with foreign keys on
    # that cascades into every message.
    op.add_column("conversations", sa.Column("memory_from_turn", sa.Integer(), nullable=False, server_default=sa.text("1")))
    op.add_column("conversations", sa.Column("memory_undo_from", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("conversations", "memory_undo_from")  # SQLite 3.35+ drops a column in place
    op.drop_column("conversations", "memory_from_turn")
