"""Only calls a replay may reuse (summaries, extractions) are hashed, so the index skips chat calls.

A chat turn then writes one index entry fewer. Hashes already stored on chat rows are cleared,
as nothing reads them.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

WHERE = sa.text("request_hash IS NOT NULL")


def upgrade() -> None:
    op.execute("UPDATE model_calls SET request_hash = NULL WHERE purpose = 'chat'")
    op.drop_index("ix_model_calls_user_request_hash", table_name="model_calls")
    op.create_index("ix_model_calls_user_request_hash", "model_calls", ["user_id", "request_hash"],
                    sqlite_where=WHERE, postgresql_where=WHERE)


def downgrade() -> None:
    op.drop_index("ix_model_calls_user_request_hash", table_name="model_calls")
    op.create_index("ix_model_calls_user_request_hash", "model_calls", ["user_id", "request_hash"])
