"""Long-term memory: recall settings, turn vectors (loose and in blocks), preference history, entities, call details.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy): recreating `conversations` on SQLite would cascade-delete its messages.
    op.add_column("conversations", sa.Column("recall_turns", sa.Integer(), server_default=sa.text("3"),
                                             nullable=False))
    op.add_column("conversations", sa.Column("recall_min_score", sa.Float(), server_default=sa.text("0.1"),
                                             nullable=False))
    op.add_column("conversations", sa.Column("recall_scope", sa.String(16), server_default=sa.text("'conversation'"),
                                             nullable=False))
    op.add_column("model_calls", sa.Column("details", sa.JSON(), nullable=True))
    op.create_table(
        "turn_vectors",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("embedder", sa.String(200), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("conversation_id", "embedder", "turn", name="uq_turn_vectors_conversation_embedder_turn"),
    )
    op.create_index("ix_turn_vectors_user_embedder", "turn_vectors", ["user_id", "embedder", "id"])
    op.create_table(
        "turn_vector_blocks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("embedder", sa.String(200), nullable=False),
        sa.Column("first_turn", sa.Integer(), nullable=False),
        sa.Column("last_turn", sa.Integer(), nullable=False),
        sa.Column("turns", sa.LargeBinary(), nullable=False),
        sa.Column("vectors", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("conversation_id", "embedder", "first_turn", name="uq_turn_vector_blocks_first_turn"),
    )
    op.create_index("ix_turn_vector_blocks_conversation", "turn_vector_blocks",
                    ["conversation_id", "embedder", "last_turn"])
    op.create_index("ix_turn_vector_blocks_user_embedder", "turn_vector_blocks", ["user_id", "embedder", "id"])
    op.create_table(
        "preference_changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("turn", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("undoes", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_preference_changes_user_key", "preference_changes", ["user_id", "key", "id"])
    op.create_index("ix_preference_changes_user", "preference_changes", ["user_id", "id"])
    op.create_table(
        "entities",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("name_key", sa.String(100), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_entities_conversation_name", "entities", ["conversation_id", "name_key", "id"])


def downgrade() -> None:
    op.drop_table("entities")
    op.drop_table("preference_changes")
    op.drop_table("turn_vector_blocks")
    op.drop_table("turn_vectors")
    op.drop_column("model_calls", "details")
    for column in ("recall_scope", "recall_min_score", "recall_turns"):
        op.drop_column("conversations", column)  # SQLite 3.35+ drops in place; a batch copy would cascade
