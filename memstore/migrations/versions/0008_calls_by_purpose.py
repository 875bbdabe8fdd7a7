"""Bounded reads of the ledger by kind: the newest summary call of a conversation, or of a user.

Without these, "the newest summary call" scanned every ledger row of the conversation when none
existed yet (54 ms at 100,000 messages, 2.2 s on first use), and the Model calls page's kind filter
scanned every row of the user.

Revision ID: 0008
Revises: 0007
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_model_calls_conversation_purpose", "model_calls", ["user_id", "conversation_id", "purpose", "id"])
    op.create_index("ix_model_calls_user_purpose", "model_calls", ["user_id", "purpose", "id"])


def downgrade() -> None:
    op.drop_index("ix_model_calls_user_purpose", table_name="model_calls")
    op.drop_index("ix_model_calls_conversation_purpose", table_name="model_calls")
