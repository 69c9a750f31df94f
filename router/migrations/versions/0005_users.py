"""users: dispatchers' accounts for the labeling app (salted argon2id hash, role, failed sign-ins)

Revision ID: 0005_users
Revises: 0004_open_queue_item
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005_users"
down_revision = "0004_open_queue_item"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "account",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("password_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("failed_sign_ins", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade():
    op.drop_table("account")
