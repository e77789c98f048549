"""user session version: logout, password change and deactivation end every session

Revision ID: c4d2e6f8a1b3
Revises: b3a1c0d2e4f5
Create Date: 2026-12-14 10:00:00

Every login cookie carries the user's `session_version`; raising it refuses every cookie issued
before. Existing sessions (whose cookie holds only the id) count as version 0 and keep working.
"""
from alembic import op
import sqlalchemy as sa


revision = 'c4d2e6f8a1b3'
down_revision = 'b3a1c0d2e4f5'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('session_version', sa.Integer(), server_default='0', nullable=False)
        )


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('session_version')
