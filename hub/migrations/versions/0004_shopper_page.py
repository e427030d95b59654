"""The shopper's own page (issue 11): passkeys that claim a card and sign the shopper in,
one-time WebAuthn challenges, where and how each wishlist item was added, when and where
each sharing choice was made, the access log ("who saw my data"), guest visits of cards
not yet claimed, names and dates on cards and phones.

Revision ID: 0004
"""
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FLOAT = sa.Float(precision=53)


def upgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("shoppers") as batch:
        batch.add_column(sa.Column("claimed_at", FLOAT, nullable=True))  # the first passkey's time
        batch.add_column(sa.Column("webauthn_user", sa.Text(), server_default="", nullable=False))
        batch.add_column(sa.Column("created_at", FLOAT, server_default="0", nullable=False))
    # A passkey (WebAuthn credential) of a shopper: public key and signature counter only.
    op.create_table("passkeys",
                    sa.Column("id", sa.Text(), nullable=False),  # the credential id, base64url
                    sa.Column("shopper_id", sa.Text(), nullable=False),
                    sa.Column("public_key", sa.LargeBinary(), nullable=False),
                    sa.Column("sign_count", sa.BigInteger(), server_default="0", nullable=False),
                    sa.Column("transports", sa.Text(), server_default="", nullable=False),
                    sa.Column("name", sa.Text(), server_default="", nullable=False),
                    sa.Column("created_at", FLOAT, nullable=False),
                    sa.Column("last_used_at", FLOAT, server_default="0", nullable=False),
                    sa.PrimaryKeyConstraint("id"))
    op.create_index("passkeys_shopper", "passkeys", ["shopper_id"])
    # One WebAuthn ceremony: its challenge, used at most once, for a few minutes.
    op.create_table("webauthn_challenges",
                    sa.Column("id_hash", sa.Text(), nullable=False),
                    sa.Column("purpose", sa.Text(), nullable=False),  # claim | sign_in | add_passkey
                    sa.Column("subject", sa.Text(), server_default="", nullable=False),
                    sa.Column("challenge", sa.Text(), nullable=False),
                    sa.Column("expires_at", FLOAT, nullable=False),
                    sa.PrimaryKeyConstraint("id_hash"))
    # Cards and phones get a public id (what the page's forms name), a name and dates.
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(sa.Column("id", sa.Text(), server_default="", nullable=False))
        batch.add_column(sa.Column("name", sa.Text(), server_default="", nullable=False))
        batch.add_column(sa.Column("created_at", FLOAT, server_default="0", nullable=False))
        batch.add_column(sa.Column("revoked_at", FLOAT, nullable=True))
    for (digest,) in conn.execute(sa.text("SELECT hash FROM credentials")).fetchall():
        conn.execute(sa.text("UPDATE credentials SET id=:i WHERE hash=:h"),
                     {"i": "card-" + secrets.token_hex(6), "h": digest})
    with op.batch_alter_table("phone_keys") as batch:
        batch.add_column(sa.Column("name", sa.Text(), server_default="", nullable=False))
        batch.add_column(sa.Column("created_at", FLOAT, server_default="0", nullable=False))
        batch.add_column(sa.Column("revoked_at", FLOAT, nullable=True))
    with op.batch_alter_table("sun_cards") as batch:
        batch.add_column(sa.Column("name", sa.Text(), server_default="", nullable=False))
        batch.add_column(sa.Column("created_at", FLOAT, server_default="0", nullable=False))
        batch.add_column(sa.Column("revoked_at", FLOAT, nullable=True))
    # Where an item was added: the brand and store of the kiosk (or the web shop or app), the channel.
    with op.batch_alter_table("wishlist_adds") as batch:
        batch.add_column(sa.Column("channel", sa.Text(), server_default="kiosk", nullable=False))
        batch.add_column(sa.Column("brand_id", sa.Text(), server_default="", nullable=False))
        batch.add_column(sa.Column("store_id", sa.Text(), server_default="", nullable=False))
    # When and where each sharing choice was made (kiosk, page, web, app).
    with op.batch_alter_table("consents") as batch:
        batch.add_column(sa.Column("changed_at", FLOAT, server_default="0", nullable=False))
        batch.add_column(sa.Column("via", sa.Text(), server_default="kiosk", nullable=False))
        batch.add_column(sa.Column("store_id", sa.Text(), server_default="", nullable=False))
    with op.batch_alter_table("staff_search") as batch:
        batch.add_column(sa.Column("changed_at", FLOAT, server_default="0", nullable=False))
        batch.add_column(sa.Column("via", sa.Text(), server_default="kiosk", nullable=False))
    # A "no" to staff search is a choice too: kept so the page can show when it was made.
    op.create_table("staff_search_refused",
                    sa.Column("shopper_id", sa.Text(), nullable=False),
                    sa.Column("brand_id", sa.Text(), nullable=False),
                    sa.Column("changed_at", FLOAT, nullable=False),
                    sa.Column("via", sa.Text(), nullable=False),
                    sa.PrimaryKeyConstraint("shopper_id", "brand_id"))
    # Who saw the shopper's data: kept apart from the operator's logs, for the shopper.
    op.create_table("access_log",
                    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column("shopper_id", sa.Text(), nullable=False),
                    sa.Column("at", FLOAT, nullable=False),
                    sa.Column("what", sa.Text(), nullable=False),  # checkin | staff_lookup | staff_search | brand_read
                    sa.Column("brand_id", sa.Text(), server_default="", nullable=False),
                    sa.Column("store_id", sa.Text(), server_default="", nullable=False),
                    sa.Column("device_id", sa.Text(), server_default="", nullable=False),
                    sa.Column("actor", sa.Text(), server_default="", nullable=False),  # kiosk | staff | technician | app | web
                    sa.Column("why", sa.Text(), server_default="", nullable=False),
                    sa.PrimaryKeyConstraint("id"))
    op.create_index("access_log_shopper", "access_log", ["shopper_id", "at"])
    op.create_index("access_log_at", "access_log", ["at"])
    # Check-ins of a card no profile owns yet, attached to the profile when the card is claimed.
    op.create_table("guest_visits",
                    sa.Column("event_id", sa.Text(), nullable=False),
                    sa.Column("card_hash", sa.Text(), nullable=False),
                    sa.Column("device_id", sa.Text(), nullable=False),
                    sa.Column("brand_id", sa.Text(), nullable=False),
                    sa.Column("store_id", sa.Text(), nullable=False),
                    sa.Column("at", FLOAT, nullable=False),
                    sa.PrimaryKeyConstraint("event_id"))
    op.create_index("guest_visits_card", "guest_visits", ["card_hash"])
    op.create_index("guest_visits_at", "guest_visits", ["at"])
    op.create_index("events_shopper", "events", ["shopper_id", "received_at"])


def downgrade() -> None:
    op.drop_index("events_shopper", table_name="events")
    op.drop_index("guest_visits_at", table_name="guest_visits")
    op.drop_table("guest_visits")
    op.drop_table("access_log")
    op.drop_table("staff_search_refused")
    with op.batch_alter_table("staff_search") as batch:
        batch.drop_column("via")
        batch.drop_column("changed_at")
    with op.batch_alter_table("consents") as batch:
        for column in ("store_id", "via", "changed_at"):
            batch.drop_column(column)
    with op.batch_alter_table("wishlist_adds") as batch:
        for column in ("store_id", "brand_id", "channel"):
            batch.drop_column(column)
    for table in ("sun_cards", "phone_keys"):
        with op.batch_alter_table(table) as batch:
            for column in ("revoked_at", "created_at", "name"):
                batch.drop_column(column)
    with op.batch_alter_table("credentials") as batch:
        for column in ("revoked_at", "created_at", "name", "id"):
            batch.drop_column(column)
    op.drop_table("webauthn_challenges")
    op.drop_index("passkeys_shopper", table_name="passkeys")
    op.drop_table("passkeys")
    with op.batch_alter_table("shoppers") as batch:
        for column in ("created_at", "webauthn_user", "claimed_at"):
            batch.drop_column(column)
