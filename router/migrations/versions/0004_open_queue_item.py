"""one open queue item per ticket: re-routing a ticket updates its waiting item instead of
adding a second one (a partial unique index on pending items; SQLite and PostgreSQL)

Revision ID: 0004_open_queue_item
Revises: 0003_dashboard_indexes
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_open_queue_item"
down_revision = "0003_dashboard_indexes"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade():
    # Stores made before this revision may hold duplicates: keep each ticket's newest pending item.
    op.execute("UPDATE queueitem SET status = 'superseded' WHERE status = 'pending' AND id NOT IN "
               "(SELECT max(id) FROM queueitem WHERE status = 'pending' GROUP BY ticket_id)")
    op.create_index("ux_queueitem_open_ticket", "queueitem", ["ticket_id"], unique=True,
                    sqlite_where=PENDING, postgresql_where=PENDING)


def downgrade():
    op.drop_index("ux_queueitem_open_ticket", table_name="queueitem")
