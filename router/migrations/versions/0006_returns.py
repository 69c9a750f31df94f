"""returns and disputes: ticketreturn (退单), co-handling and known-wrong departments on labels

Revision ID: 0006_returns
Revises: 0005_users
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006_returns"
down_revision = "0005_users"
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString
T = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade():
    with op.batch_alter_table("label") as b:
        b.add_column(sa.Column("co_departments", sa.JSON(), nullable=True))
        b.add_column(sa.Column("wrong_departments", sa.JSON(), nullable=True))
    op.create_table(
        "ticketreturn",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", S(), nullable=False),
        sa.Column("department", S(), nullable=False),
        sa.Column("reason", S(), nullable=False),
        sa.Column("reason_given", S(), nullable=True),
        sa.Column("note", S(), nullable=False),
        sa.Column("returned_at", T(), nullable=False),
        sa.Column("importer", S(), nullable=False),
        sa.Column("prediction_id", sa.Integer(), nullable=True),
        sa.Column("label_id", sa.Integer(), nullable=True),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("status", S(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("created_at", T(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.ForeignKeyConstraint(["prediction_id"], ["prediction.id"]),
        sa.ForeignKeyConstraint(["label_id"], ["label.id"]),
        sa.ForeignKeyConstraint(["queue_id"], ["queueitem.id"]),
        sa.ForeignKeyConstraint(["decision_id"], ["label.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for col in ("ticket_id", "department", "reason", "returned_at", "status", "created_at"):
        op.create_index(f"ix_ticketreturn_{col}", "ticketreturn", [col])


def downgrade():
    op.drop_table("ticketreturn")
    with op.batch_alter_table("label") as b:
        b.drop_column("wrong_departments")
        b.drop_column("co_departments")
