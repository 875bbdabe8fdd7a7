"""Model calls carry a hash of their exact request, so a replay can reuse a summary already paid for.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_calls") as batch:
        batch.add_column(sa.Column("request_hash", sa.String(64), nullable=True))
    op.create_index("ix_model_calls_user_request_hash", "model_calls", ["user_id", "request_hash"])


def downgrade() -> None:
    op.drop_index("ix_model_calls_user_request_hash", table_name="model_calls")
    with op.batch_alter_table("model_calls") as batch:
        batch.drop_column("request_hash")
