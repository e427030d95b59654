"""Brands plug in (issue 10): brand accounts and their API keys, catalog texts per language,
stores with codes, time zones and languages, stock as retailers send it (availability, a store
price, the time it was true), offers with a start and localised titles, one-time enrollment
codes kept hashed with an expiry, revocable devices, idempotent feeds, web sessions.

Revision ID: 0003
"""
import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FLOAT = sa.Float(precision=53)


def upgrade() -> None:
    with op.batch_alter_table("brands") as batch:
        batch.add_column(sa.Column("default_language", sa.Text(), server_default="en", nullable=False))
        batch.add_column(sa.Column("created_at", FLOAT, server_default="0", nullable=False))
    # A brand's API keys: only a key's hash is kept; `id` is what lists and revocations name.
    op.create_table("brand_keys",
                    sa.Column("id", sa.Text(), nullable=False),
                    sa.Column("brand_id", sa.Text(), nullable=False),
                    sa.Column("name", sa.Text(), server_default="", nullable=False),
                    sa.Column("key_hash", sa.Text(), nullable=False),
                    sa.Column("created_at", FLOAT, nullable=False),
                    sa.Column("last_used_at", FLOAT, server_default="0", nullable=False),
                    sa.Column("revoked_at", FLOAT, nullable=True),
                    sa.PrimaryKeyConstraint("id"),
                    sa.UniqueConstraint("key_hash"))
    op.create_index("brand_keys_brand", "brand_keys", ["brand_id"])
    with op.batch_alter_table("products") as batch:
        batch.add_column(sa.Column("sku", sa.Text(), server_default="", nullable=False))
        batch.add_column(sa.Column("description", sa.Text(), server_default="", nullable=False))
        batch.add_column(sa.Column("texts", sa.Text(), server_default="{}", nullable=False))  # {lang: {title, description}}
        batch.add_column(sa.Column("image_url", sa.Text(), server_default="", nullable=False))
        batch.add_column(sa.Column("image_state", sa.Text(), server_default="", nullable=False))
        batch.add_column(sa.Column("deleted", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("updated_at", FLOAT, server_default="0", nullable=False))
    op.create_index("products_brand", "products", ["brand_id", "gtin"])
    with op.batch_alter_table("stores") as batch:
        batch.add_column(sa.Column("code", sa.Text(), server_default="", nullable=False))
        batch.add_column(sa.Column("timezone", sa.Text(), server_default="UTC", nullable=False))
        batch.add_column(sa.Column("languages", sa.Text(), server_default="", nullable=False))
    conn = op.get_bind()
    for store_id, brand_id in conn.execute(sa.text("SELECT id, brand_id FROM stores")).fetchall():
        code = store_id[len(brand_id) + 1:] if store_id.startswith(brand_id + "-") else store_id
        conn.execute(sa.text("UPDATE stores SET code=:c WHERE id=:i"), {"c": code, "i": store_id})
    op.create_index("stores_brand_code", "stores", ["brand_id", "code"], unique=True)
    with op.batch_alter_table("inventory") as batch:
        batch.add_column(sa.Column("availability", sa.Text(), server_default="", nullable=False))
        batch.add_column(sa.Column("price", sa.Text(), server_default="", nullable=False))  # '' = the product's
        batch.add_column(sa.Column("as_of", FLOAT, server_default="0", nullable=False))
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("valid_from", sa.Text(), server_default="", nullable=False))
        batch.add_column(sa.Column("titles", sa.Text(), server_default="{}", nullable=False))
        batch.add_column(sa.Column("updated_at", FLOAT, server_default="0", nullable=False))
    # Enrollment codes are kept as their SHA-256 (a stolen database enrolls nothing); `id` names
    # a code in lists; one-time codes expire.
    with op.batch_alter_table("enrollment_codes") as batch:
        batch.add_column(sa.Column("id", sa.Text(), server_default="", nullable=False))
        batch.add_column(sa.Column("created_at", FLOAT, server_default="0", nullable=False))
        batch.add_column(sa.Column("expires_at", FLOAT, nullable=True))
        batch.add_column(sa.Column("revoked", sa.Integer(), server_default="0", nullable=False))
    for (code,) in conn.execute(sa.text("SELECT code FROM enrollment_codes")).fetchall():
        digest = hashlib.sha256(code.encode()).hexdigest()
        conn.execute(sa.text("UPDATE enrollment_codes SET code=:h, id=:i WHERE code=:c"),
                     {"h": digest, "i": "code-" + digest[:10], "c": code})
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("revoked_at", FLOAT, nullable=True))
        # the revoked device this kiosk was before it enrolled again (proved by its old token):
        # its queued events may point at the check-ins that device had accepted
        batch.add_column(sa.Column("predecessor", sa.Text(), server_default="", nullable=False))
    # A feed call sent with an Idempotency-Key: its body's hash and its answer, replayed.
    op.create_table("feeds",
                    sa.Column("brand_id", sa.Text(), nullable=False),
                    sa.Column("idempotency_key", sa.Text(), nullable=False),
                    sa.Column("body_hash", sa.Text(), nullable=False),
                    sa.Column("answer", sa.Text(), nullable=False),
                    sa.Column("at", FLOAT, nullable=False),
                    sa.PrimaryKeyConstraint("brand_id", "idempotency_key"))
    # Signed-in web pages (a brand's fleet page; the shopper's page): the session id's hash.
    op.create_table("web_sessions",
                    sa.Column("id_hash", sa.Text(), nullable=False),
                    sa.Column("kind", sa.Text(), nullable=False),
                    sa.Column("subject", sa.Text(), nullable=False),
                    sa.Column("key_id", sa.Text(), server_default="", nullable=False),
                    sa.Column("csrf", sa.Text(), nullable=False),
                    sa.Column("created_at", FLOAT, nullable=False),
                    sa.Column("expires_at", FLOAT, nullable=False),
                    sa.PrimaryKeyConstraint("id_hash"))


def downgrade() -> None:
    op.drop_table("web_sessions")
    op.drop_table("feeds")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("predecessor")
        batch.drop_column("revoked_at")
    with op.batch_alter_table("enrollment_codes") as batch:  # hashed codes cannot be un-hashed
        for column in ("revoked", "expires_at", "created_at", "id"):
            batch.drop_column(column)
    with op.batch_alter_table("offers") as batch:
        for column in ("updated_at", "titles", "valid_from"):
            batch.drop_column(column)
    with op.batch_alter_table("inventory") as batch:
        for column in ("as_of", "price", "availability"):
            batch.drop_column(column)
    op.drop_index("stores_brand_code", table_name="stores")
    with op.batch_alter_table("stores") as batch:
        for column in ("languages", "timezone", "code"):
            batch.drop_column(column)
    op.drop_index("products_brand", table_name="products")
    with op.batch_alter_table("products") as batch:
        for column in ("updated_at", "deleted", "image_state", "image_url", "texts", "description", "sku"):
            batch.drop_column(column)
    op.drop_index("brand_keys_brand", table_name="brand_keys")
    op.drop_table("brand_keys")
    with op.batch_alter_table("brands") as batch:
        batch.drop_column("created_at")
        batch.drop_column("default_language")
