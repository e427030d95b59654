"""The hub's first schema: what hub/schema.sql held (SQLite-only) for both dialects.
Unix times are double precision (PostgreSQL's REAL is 4 bytes); blobs are LargeBinary.

Revision ID: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('brands',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('consents',
    sa.Column('shopper_id', sa.Text(), nullable=False),
    sa.Column('from_brand', sa.Text(), nullable=False),
    sa.Column('to_brand', sa.Text(), nullable=False),
    sa.Column('state', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('shopper_id', 'from_brand', 'to_brand')
    )
    op.create_table('counters',
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('devices',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('token_hash', sa.Text(), nullable=False),
    sa.Column('brand_id', sa.Text(), nullable=False),
    sa.Column('store_id', sa.Text(), nullable=False),
    sa.Column('enrolled_at', sa.Float(precision=53), nullable=False),
    sa.Column('heartbeat', sa.Text(), server_default='{}', nullable=False),
    sa.Column('last_seen', sa.Float(precision=53), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('enrollment_codes',
    sa.Column('code', sa.Text(), nullable=False),
    sa.Column('brand_id', sa.Text(), nullable=False),
    sa.Column('store_id', sa.Text(), nullable=False),
    sa.Column('reusable', sa.Integer(), server_default='0', nullable=False),
    sa.Column('used_by', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('events',
    sa.Column('event_id', sa.Text(), nullable=False),
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('type', sa.Text(), nullable=False),
    sa.Column('body_hash', sa.Text(), nullable=False),
    sa.Column('shopper_id', sa.Text(), nullable=True),
    sa.Column('received_at', sa.Float(precision=53), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_table('hce_nonces',
    sa.Column('nonce', sa.Text(), nullable=False),
    sa.Column('seen_at', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('nonce')
    )
    op.create_table('images',
    sa.Column('gtin', sa.Text(), nullable=False),
    sa.Column('png', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('gtin')
    )
    op.create_table('inventory',
    sa.Column('store_id', sa.Text(), nullable=False),
    sa.Column('gtin', sa.Text(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('location', sa.Text(), server_default='', nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('store_id', 'gtin')
    )
    op.create_index('inventory_version', 'inventory', ['store_id', 'version'], unique=False)
    op.create_table('offers',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('brand_id', sa.Text(), nullable=False),
    sa.Column('store_id', sa.Text(), nullable=True),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('gtin', sa.Text(), server_default='', nullable=False),
    sa.Column('discount_pct', sa.Integer(), server_default='0', nullable=False),
    sa.Column('valid_until', sa.Text(), server_default='', nullable=False),
    sa.Column('deleted', sa.Integer(), server_default='0', nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('sessions',
    sa.Column('token_hash', sa.Text(), nullable=False),
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('shopper_id', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_table('settings',
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('shoppers',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('display_name', sa.Text(), nullable=False),
    sa.Column('locale', sa.Text(), server_default='en', nullable=False),
    sa.Column('role', sa.Text(), server_default='shopper', nullable=False),
    sa.Column('allow_staff_search', sa.Integer(), server_default='0', nullable=False),
    sa.Column('pin_hash', sa.Text(), server_default='', nullable=False),
    sa.Column('erased', sa.Integer(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('staff_directory',
    sa.Column('shopper_id', sa.Text(), nullable=False),
    sa.Column('full_name', sa.Text(), nullable=False),
    sa.Column('search_key', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('shopper_id')
    )
    op.create_table('staff_pin_failures',
    sa.Column('staff_id', sa.Text(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.Float(precision=53), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('staff_id')
    )
    op.create_table('staff_sessions',
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('staff_id', sa.Text(), nullable=False),
    sa.Column('role', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('device_id')
    )
    op.create_table('visits',
    sa.Column('shopper_id', sa.Text(), nullable=False),
    sa.Column('brand_id', sa.Text(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('last_at', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('shopper_id', 'brand_id')
    )
    op.create_table('wishlist_adds',
    sa.Column('tag', sa.Text(), nullable=False),
    sa.Column('shopper_id', sa.Text(), nullable=False),
    sa.Column('gtin', sa.Text(), nullable=False),
    sa.Column('received_at', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('tag')
    )
    op.create_index('wishlist_adds_shopper', 'wishlist_adds', ['shopper_id'], unique=False)
    op.create_table('wishlist_removed',
    sa.Column('tag', sa.Text(), nullable=False),
    sa.Column('shopper_id', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('tag')
    )
    op.create_table('credentials',
    sa.Column('hash', sa.Text(), nullable=False),
    sa.Column('shopper_id', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('revoked', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['shopper_id'], ['shoppers.id'], ),
    sa.PrimaryKeyConstraint('hash')
    )
    op.create_table('phone_keys',
    sa.Column('credential_id', sa.Text(), nullable=False),
    sa.Column('shopper_id', sa.Text(), nullable=False),
    sa.Column('public_key', sa.LargeBinary(), nullable=False),
    sa.Column('revoked', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['shopper_id'], ['shoppers.id'], ),
    sa.PrimaryKeyConstraint('credential_id')
    )
    op.create_table('products',
    sa.Column('gtin', sa.Text(), nullable=False),
    sa.Column('brand_id', sa.Text(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('price', sa.Text(), nullable=False),
    sa.Column('currency', sa.Text(), nullable=False),
    sa.Column('online', sa.Integer(), server_default='1', nullable=False),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], ),
    sa.PrimaryKeyConstraint('gtin')
    )
    op.create_table('stores',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('brand_id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('city', sa.Text(), server_default='', nullable=False),
    sa.Column('currency', sa.Text(), server_default='USD', nullable=False),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('sun_cards',
    sa.Column('uid', sa.Text(), nullable=False),
    sa.Column('shopper_id', sa.Text(), nullable=False),
    sa.Column('file_key', sa.Text(), nullable=False),
    sa.Column('last_counter', sa.Integer(), server_default='-1', nullable=False),
    sa.ForeignKeyConstraint(['shopper_id'], ['shoppers.id'], ),
    sa.PrimaryKeyConstraint('uid')
    )



def downgrade() -> None:
    op.drop_table('sun_cards')
    op.drop_table('stores')
    op.drop_table('products')
    op.drop_table('phone_keys')
    op.drop_table('credentials')
    op.drop_table('wishlist_removed')
    op.drop_index('wishlist_adds_shopper', table_name='wishlist_adds')
    op.drop_table('wishlist_adds')
    op.drop_table('visits')
    op.drop_table('staff_sessions')
    op.drop_table('staff_pin_failures')
    op.drop_table('staff_directory')
    op.drop_table('shoppers')
    op.drop_table('settings')
    op.drop_table('sessions')
    op.drop_table('offers')
    op.drop_index('inventory_version', table_name='inventory')
    op.drop_table('inventory')
    op.drop_table('images')
    op.drop_table('hce_nonces')
    op.drop_table('events')
    op.drop_table('enrollment_codes')
    op.drop_table('devices')
    op.drop_table('counters')
    op.drop_table('consents')
    op.drop_table('brands')

