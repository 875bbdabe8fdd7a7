"""Where a conversation came from: an imported session, thread or ChatGPT conversation, or a LangChain app's session.

`source` is None for conversations made in Memory Lab. It is unique per user, so importing the same session twice
finds the first copy, and a LangChain app's session id always maps to the same conversation.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (see 0007: a batch rebuild of conversations would cascade into every message).
    op.add_column("conversations", sa.Column("source", sa.String(500), nullable=True))
    op.create_index("ux_conversations_user_source", "conversations", ["user_id", "source"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_conversations_user_source", table_name="conversations")
    op.drop_column("conversations", "source")
