"""Trust at the hub (issue 9): wishlist removes scoped to their shopper, the revocation feed,
staff tied to brands (and stores), PIN lock-outs per staff member and kiosk, rate limits shared
by every hub process, per-brand staff search permission, revocable secure cards, per-client
admin credentials.

Revision ID: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FLOAT = sa.Float(precision=53)


def upgrade() -> None:
    # A remove takes away only adds of the same shopper: the key is (tag, shopper).
    op.create_table("wishlist_removes",
                    sa.Column("tag", sa.Text(), nullable=False),
                    sa.Column("shopper_id", sa.Text(), nullable=False),
                    sa.PrimaryKeyConstraint("tag", "shopper_id"))
    op.execute("INSERT INTO wishlist_removes(tag, shopper_id) SELECT tag, shopper_id FROM wishlist_removed")
    op.drop_table("wishlist_removed")
    # What kiosks must forget: consent revoked (for one brand's kiosks), a credential or card
    # revoked, a shopper erased (for every kiosk). A delta feed by version, like inventory.
    op.create_table("revocations",
                    sa.Column("version", sa.Integer(), nullable=False),
                    sa.Column("shopper_id", sa.Text(), nullable=False),
                    sa.Column("brand_id", sa.Text(), nullable=True),  # NULL: every brand's kiosks
                    sa.Column("kind", sa.Text(), nullable=False),
                    sa.Column("at", FLOAT, nullable=False),
                    sa.PrimaryKeyConstraint("version"))
    # Staff are people of a brand, optionally of some of its stores ('' = every store of it).
    op.create_table("staff_roles",
                    sa.Column("staff_id", sa.Text(), nullable=False),
                    sa.Column("brand_id", sa.Text(), nullable=False),
                    sa.Column("store_id", sa.Text(), server_default="", nullable=False),
                    sa.PrimaryKeyConstraint("staff_id", "brand_id", "store_id"))
    # Wrong PINs counted per staff member and kiosk; the count survives a lock-out.
    op.drop_table("staff_pin_failures")
    op.create_table("staff_pin_tries",
                    sa.Column("staff_id", sa.Text(), nullable=False),
                    sa.Column("device_id", sa.Text(), nullable=False),
                    sa.Column("failures", sa.Integer(), nullable=False),
                    sa.Column("locked_until", FLOAT, server_default="0", nullable=False),
                    sa.PrimaryKeyConstraint("staff_id", "device_id"))
    # Fixed-window counters every hub process shares (PIN tries, enrollment attempts).
    op.create_table("rate_limits",
                    sa.Column("bucket", sa.Text(), nullable=False),
                    sa.Column("slot", sa.Integer(), nullable=False),
                    sa.Column("count", sa.Integer(), nullable=False),
                    sa.Column("until", FLOAT, nullable=False),
                    sa.PrimaryKeyConstraint("bucket", "slot"))
    # Staff search permission is per brand; a global "yes" carries over to the brands the
    # shopper has a relationship with (visited).
    op.create_table("staff_search",
                    sa.Column("shopper_id", sa.Text(), nullable=False),
                    sa.Column("brand_id", sa.Text(), nullable=False),
                    sa.PrimaryKeyConstraint("shopper_id", "brand_id"))
    op.execute("INSERT INTO staff_search(shopper_id, brand_id) SELECT DISTINCT s.id, v.brand_id FROM shoppers s "
               "JOIN visits v ON v.shopper_id = s.id WHERE s.allow_staff_search = 1")
    with op.batch_alter_table("sun_cards") as batch:
        batch.add_column(sa.Column("revoked", sa.Integer(), server_default="0", nullable=False))
    # Admin clients (a shopper app's back end, a brand's tooling): a secret's hash and scopes.
    op.create_table("admin_clients",
                    sa.Column("id", sa.Text(), nullable=False),
                    sa.Column("secret_hash", sa.Text(), nullable=False),
                    sa.Column("scopes", sa.Text(), nullable=False),
                    sa.Column("created_at", FLOAT, nullable=False),
                    sa.Column("revoked", sa.Integer(), server_default="0", nullable=False),
                    sa.PrimaryKeyConstraint("id"),
                    sa.UniqueConstraint("secret_hash"))


def downgrade() -> None:
    op.drop_table("admin_clients")
    with op.batch_alter_table("sun_cards") as batch:
        batch.drop_column("revoked")
    op.drop_table("staff_search")
    op.drop_table("rate_limits")
    op.drop_table("staff_pin_tries")
    op.create_table("staff_pin_failures",
                    sa.Column("staff_id", sa.Text(), nullable=False),
                    sa.Column("failures", sa.Integer(), nullable=False),
                    sa.Column("locked_until", FLOAT, server_default="0", nullable=False),
                    sa.PrimaryKeyConstraint("staff_id"))
    op.drop_table("staff_roles")
    op.drop_table("revocations")
    op.create_table("wishlist_removed",
                    sa.Column("tag", sa.Text(), nullable=False),
                    sa.Column("shopper_id", sa.Text(), nullable=False),
                    sa.PrimaryKeyConstraint("tag"))
    op.execute("INSERT INTO wishlist_removed(tag, shopper_id) SELECT tag, MIN(shopper_id) FROM wishlist_removes "
               "GROUP BY tag")
    op.drop_table("wishlist_removes")
