"""race-proof orders: refund state, attention flag, live price floor; per-buyer units derived

Revision ID: b3a1c0d2e4f5
Revises: 7964158ace01
Create Date: 2026-12-07 14:10:00

The per-buyer units under a pin are now counted from the buyer's orders themselves (under the
buyer's row lock), so the `pin_purchase` counter, which a cancel had to keep in step, is gone.
"""
from alembic import op
import sqlalchemy as sa


revision = 'b3a1c0d2e4f5'
down_revision = '7964158ace01'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refund_status', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('attention', sa.String(length=40), nullable=True))
    op.execute("UPDATE \"order\" SET refund_status = 'succeeded' WHERE status = 'refunded'")
    with op.batch_alter_table('cooperative', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('live_price_floor_percent', sa.Integer(), server_default='50', nullable=False)
        )
    op.drop_table('pin_purchase')


def downgrade():
    op.create_table('pin_purchase',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pin_id', sa.Integer(), nullable=False),
    sa.Column('buyer_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.CheckConstraint('quantity >= 0', name=op.f('ck_pin_purchase_quantity_not_negative')),
    sa.ForeignKeyConstraint(['buyer_id'], ['user.id'], name=op.f('fk_pin_purchase_buyer_id_user')),
    sa.ForeignKeyConstraint(['pin_id'], ['pin.id'], name=op.f('fk_pin_purchase_pin_id_pin')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pin_purchase')),
    sa.UniqueConstraint('pin_id', 'buyer_id', name=op.f('uq_pin_purchase_pin_id_buyer_id'))
    )
    with op.batch_alter_table('cooperative', schema=None) as batch_op:
        batch_op.drop_column('live_price_floor_percent')
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.drop_column('attention')
        batch_op.drop_column('refund_status')
