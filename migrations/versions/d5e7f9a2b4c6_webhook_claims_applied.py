"""webhook claims: stored payload, a lease while applying, applied_at once applied

Revision ID: d5e7f9a2b4c6
Revises: c4d2e6f8a1b3
Create Date: 2026-12-07 15:40:00

Claims recorded before this revision were applied (or released) by the old handler.
"""
from alembic import op
import sqlalchemy as sa

import shop.database


revision = 'd5e7f9a2b4c6'
down_revision = 'c4d2e6f8a1b3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhook_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payload', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('lease_until', shop.database.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('applied_at', shop.database.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_webhook_event_applied_at_received_at', ['applied_at', 'received_at'], unique=False)
    op.execute("UPDATE webhook_event SET applied_at = received_at")


def downgrade():
    with op.batch_alter_table('webhook_event', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_event_applied_at_received_at')
        batch_op.drop_column('applied_at')
        batch_op.drop_column('lease_until')
        batch_op.drop_column('payload')
