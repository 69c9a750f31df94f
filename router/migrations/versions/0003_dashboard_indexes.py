"""dashboard indexes: the drift and confusion pages stay fast with millions of labels

- label (department, undone, created_at): the department mix of the labels (an index-only scan
  instead of reading every label row) and a pair's newest example tickets (walks one
  department's labels newest first and stops after a page of them)

Revision ID: 0003_dashboard_indexes
Revises: 0002_queue_indexes
"""
from alembic import op

revision = "0003_dashboard_indexes"
down_revision = "0002_queue_indexes"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_label_department_undone_created_at", "label", ["department", "undone", "created_at"])


def downgrade():
    op.drop_index("ix_label_department_undone_created_at", table_name="label")
