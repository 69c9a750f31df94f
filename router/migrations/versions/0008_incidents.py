"""incidents (并单): repeated appeals about one matter grouped; each ticket's place and district

Revision ID: 0008_incidents
Revises: 0007_rules
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008_incidents"
down_revision = "0007_rules"
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString
T = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade():
    op.create_table(
        "incident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("place", S(), nullable=False),
        sa.Column("district", S(), nullable=True),
        sa.Column("department", S(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("started_at", T(), nullable=True),
        sa.Column("last_at", T(), nullable=True),
        sa.Column("created_at", T(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for col in ("district", "department", "started_at", "last_at"):
        op.create_index(f"ix_incident_{col}", "incident", [col])
    with op.batch_alter_table("ticket") as b:
        b.add_column(sa.Column("places", S(), nullable=True))
        b.add_column(sa.Column("district", S(), nullable=True))
        b.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
        b.add_column(sa.Column("duplicate_of", S(), nullable=True))
    op.create_index("ix_ticket_district", "ticket", ["district"])
    op.create_index("ix_ticket_incident_id", "ticket", ["incident_id"])


def downgrade():
    op.drop_index("ix_ticket_incident_id", "ticket")
    op.drop_index("ix_ticket_district", "ticket")
    with op.batch_alter_table("ticket") as b:
        for col in ("duplicate_of", "incident_id", "district", "places"):
            b.drop_column(col)
    op.drop_table("incident")
