"""Web shops and apps (issue 12): OAuth clients a brand registers, one-time authorization codes,
the shopper's grants (one live grant per shopper and client), access and refresh tokens (only
their SHA-256 hashes), and "tell me when it is on the shelf here" watches.

Revision ID: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FLOAT = sa.Float(precision=53)


def upgrade() -> None:
    # A brand's web shop or app: a public client (PKCE S256), exact redirect URIs only.
    op.create_table("oauth_clients",
                    sa.Column("id", sa.Text(), nullable=False),  # "cl_" + token_urlsafe(16)
                    sa.Column("brand_id", sa.Text(), nullable=False),
                    sa.Column("name", sa.Text(), nullable=False),
                    sa.Column("kind", sa.Text(), nullable=False),  # web | app
                    sa.Column("redirect_uris", sa.Text(), nullable=False),  # JSON list
                    sa.Column("created_at", FLOAT, nullable=False),
                    sa.Column("revoked_at", FLOAT, nullable=True),
                    sa.PrimaryKeyConstraint("id"))
    op.create_index("oauth_clients_brand", "oauth_clients", ["brand_id"])
    # An authorization code, used at most once, for a minute or so.
    op.create_table("oauth_codes",
                    sa.Column("code_hash", sa.Text(), nullable=False),  # sha256 hex
                    sa.Column("client_id", sa.Text(), nullable=False),
                    sa.Column("shopper_id", sa.Text(), nullable=False),
                    sa.Column("redirect_uri", sa.Text(), nullable=False),
                    sa.Column("scope", sa.Text(), nullable=False),
                    sa.Column("code_challenge", sa.Text(), nullable=False),
                    sa.Column("code_challenge_method", sa.Text(), nullable=False),
                    sa.Column("grant_id", sa.Text(), nullable=False),
                    sa.Column("created_at", FLOAT, nullable=False),
                    sa.Column("expires_at", FLOAT, nullable=False),
                    sa.Column("used_at", FLOAT, nullable=True),
                    sa.PrimaryKeyConstraint("code_hash"))
    # What the shopper allowed one client: one live grant per (shopper, client).
    op.create_table("oauth_grants",
                    sa.Column("id", sa.Text(), nullable=False),  # "gr_" + token_urlsafe
                    sa.Column("shopper_id", sa.Text(), nullable=False),
                    sa.Column("brand_id", sa.Text(), nullable=False),
                    sa.Column("client_id", sa.Text(), nullable=False),
                    sa.Column("scope", sa.Text(), nullable=False),  # space separated
                    sa.Column("created_at", FLOAT, nullable=False),
                    sa.Column("updated_at", FLOAT, nullable=False),
                    sa.Column("revoked_at", FLOAT, nullable=True),
                    sa.PrimaryKeyConstraint("id"))
    op.create_index("oauth_grants_shopper", "oauth_grants", ["shopper_id", "client_id"])
    op.create_index("oauth_grants_live", "oauth_grants", ["shopper_id", "client_id"], unique=True,
                    sqlite_where=sa.text("revoked_at IS NULL"), postgresql_where=sa.text("revoked_at IS NULL"))
    # Access (10 minutes) and refresh (30 days, rotating) tokens: SHA-256 hashes only.
    op.create_table("oauth_tokens",
                    sa.Column("id", sa.Text(), nullable=False),
                    sa.Column("grant_id", sa.Text(), nullable=False),
                    sa.Column("client_id", sa.Text(), nullable=False),
                    sa.Column("shopper_id", sa.Text(), nullable=False),
                    sa.Column("brand_id", sa.Text(), nullable=False),
                    sa.Column("scope", sa.Text(), nullable=False),
                    sa.Column("access_hash", sa.Text(), nullable=False),
                    sa.Column("refresh_hash", sa.Text(), nullable=False),
                    sa.Column("issued_at", FLOAT, nullable=False),
                    sa.Column("access_expires_at", FLOAT, nullable=False),
                    sa.Column("refresh_expires_at", FLOAT, nullable=False),
                    sa.Column("rotated_at", FLOAT, nullable=True),
                    sa.Column("revoked_at", FLOAT, nullable=True),
                    sa.PrimaryKeyConstraint("id"),
                    sa.UniqueConstraint("access_hash", name="oauth_tokens_access"),
                    sa.UniqueConstraint("refresh_hash", name="oauth_tokens_refresh"))
    op.create_index("oauth_tokens_grant", "oauth_tokens", ["grant_id"])
    # "Tell me when it is on the shelf here": a wishlist item, a store, who asked and where.
    op.create_table("shelf_watches",
                    sa.Column("shopper_id", sa.Text(), nullable=False),
                    sa.Column("gtin", sa.Text(), nullable=False),
                    sa.Column("store_id", sa.Text(), nullable=False),
                    sa.Column("created_at", FLOAT, nullable=False),
                    sa.Column("via", sa.Text(), nullable=False),  # page | web | app
                    sa.PrimaryKeyConstraint("shopper_id", "gtin", "store_id"))
    op.create_index("shelf_watches_store", "shelf_watches", ["store_id", "gtin"])


def downgrade() -> None:
    op.drop_index("shelf_watches_store", table_name="shelf_watches")
    op.drop_table("shelf_watches")
    op.drop_index("oauth_tokens_grant", table_name="oauth_tokens")
    op.drop_table("oauth_tokens")
    op.drop_index("oauth_grants_live", table_name="oauth_grants")
    op.drop_index("oauth_grants_shopper", table_name="oauth_grants")
    op.drop_table("oauth_grants")
    op.drop_table("oauth_codes")
    op.drop_index("oauth_clients_brand", table_name="oauth_clients")
    op.drop_table("oauth_clients")
