"""dispatch catalogue rules (派单目录): rule table; the rule that decided a prediction

Revision ID: 0007_rules
Revises: 0006_returns
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007_rules"
down_revision = "0006_returns"
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString
T = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade():
    op.create_table(
        "rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pattern", S(), nullable=False),
        sa.Column("regex", sa.Boolean(), nullable=False),
        sa.Column("department", S(), nullable=False),
        sa.Column("district", S(), nullable=True),
        sa.Column("note", S(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", S(), nullable=False),
        sa.Column("created_at", T(), nullable=False),
        sa.Column("disabled_by", S(), nullable=True),
        sa.Column("disabled_at", T(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rule_active", "rule", ["active"])
    with op.batch_alter_table("prediction") as b:
        b.add_column(sa.Column("rule_id", sa.Integer(), nullable=True))
    op.create_index("ix_prediction_rule_id", "prediction", ["rule_id"])


def downgrade():
    op.drop_index("ix_prediction_rule_id", "prediction")
    with op.batch_alter_table("prediction") as b:
        b.drop_column("rule_id")
    op.drop_table("rule")
