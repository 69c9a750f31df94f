"""queue indexes: the labeling app's queries stay fast with millions of tickets

- queueitem (status, priority): the next pending ticket by priority
- queueitem (claimed_by, status, done_at): a reviewer's live claim, last decision, skips today
- label (reviewer, created_at): a reviewer's counts today

Revision ID: 0002_queue_indexes
Revises: 0001
"""
from alembic import op

revision = "0002_queue_indexes"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_queueitem_status_priority", "queueitem", ["status", "priority"])
    op.create_index("ix_queueitem_claimed_by_status_done_at", "queueitem", ["claimed_by", "status", "done_at"])
    op.create_index("ix_label_reviewer_created_at", "label", ["reviewer", "created_at"])


def downgrade():
    op.drop_index("ix_label_reviewer_created_at", table_name="label")
    op.drop_index("ix_queueitem_claimed_by_status_done_at", table_name="queueitem")
    op.drop_index("ix_queueitem_status_priority", table_name="queueitem")
