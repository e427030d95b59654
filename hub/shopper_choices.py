"""What the shopper changes on their page: sharing per brand (whether a brand may see the items
saved at the others; a refusal reaches that brand's kiosks through the revocation feed in the
same transaction), whether a brand's staff may find them by name, removing wishlist items,
and naming, revoking and adding cards and phones.
"""
from __future__ import annotations

import time

from kiosk import api
from hub import credentials, inputs, revocations
from hub.profile import ALL_BRANDS
from hub.shopper_account import _shopper, invalid, not_yours
from hub.shopper_profile import LIVE_ADDS, _met, _sun_id
from hub.store import HubStore

NAME_MAX = 40
MAX_TAGS = 1000
VIAS = ("kiosk", "page", "web", "app")


# -- choices --------------------------------------------------------------------------------
def _choice(store: HubStore, shopper_id: str, brand_id: str, via: str, require_met: bool = True) -> None:
    if via not in VIAS:
        raise invalid("via must be one of " + ", ".join(VIAS))
    _shopper(store, shopper_id)
    if not isinstance(brand_id, str) or brand_id not in ({b for b, _ in _met(store, shopper_id)} if require_met else
                                                         {b for (b,) in store.all("SELECT id FROM brands WHERE id=?", (brand_id,))}):
        raise not_yours("no such brand among the brands you have met")


def set_sharing(store: HubStore, shopper_id: str, brand_id: str, allow: bool, via: str = "page",
                require_met: bool = True) -> None:
    """Whether `brand_id` may see the items saved at other brands: one choice for all of them
    (the per-brand ones made before are replaced). A refusal reaches the brand's kiosks.
    `require_met=False`: the shopper meets the brand by making the choice (an OAuth consent
    screen of its web shop or app, hub/oauth.py); any existing brand then."""
    _choice(store, shopper_id, brand_id, via, require_met)
    state = api.GRANTED if allow else api.REFUSED
    with store.transaction() as conn:
        conn.execute("INSERT INTO consents(shopper_id, from_brand, to_brand, state, changed_at, via, store_id) "
                     "VALUES (?,?,?,?,?,?,?) ON CONFLICT(shopper_id, from_brand, to_brand) DO UPDATE SET "
                     "state=excluded.state, changed_at=excluded.changed_at, via=excluded.via, store_id=excluded.store_id",
                     (shopper_id, ALL_BRANDS, brand_id, state, time.time(), via, ""))
        conn.execute("DELETE FROM consents WHERE shopper_id=? AND to_brand=? AND from_brand<>?",
                     (shopper_id, brand_id, ALL_BRANDS))
        if not allow:
            revocations.publish(conn, shopper_id, revocations.CONSENT, brand_id)


def set_staff_search(store: HubStore, shopper_id: str, brand_id: str, allow: bool, via: str = "page") -> None:
    """Whether staff of `brand_id` may find the shopper by name; a "no" is kept with its time."""
    _choice(store, shopper_id, brand_id, via)
    now = time.time()
    with store.transaction() as conn:
        if allow:
            conn.execute("INSERT INTO staff_search(shopper_id, brand_id, changed_at, via) VALUES (?,?,?,?) "
                         "ON CONFLICT(shopper_id, brand_id) DO UPDATE SET changed_at=excluded.changed_at, via=excluded.via",
                         (shopper_id, brand_id, now, via))
            conn.execute("DELETE FROM staff_search_refused WHERE shopper_id=? AND brand_id=?", (shopper_id, brand_id))
        else:
            conn.execute("DELETE FROM staff_search WHERE shopper_id=? AND brand_id=?", (shopper_id, brand_id))
            conn.execute("INSERT INTO staff_search_refused(shopper_id, brand_id, changed_at, via) VALUES (?,?,?,?) "
                         "ON CONFLICT(shopper_id, brand_id) DO UPDATE SET changed_at=excluded.changed_at, via=excluded.via",
                         (shopper_id, brand_id, now, via))


def remove_items(store: HubStore, shopper_id: str, tags: list[str]) -> int:
    """The kiosk's observed remove: takes away exactly the named adds that are this shopper's
    and still live (any other tag is ignored). How many were removed."""
    if not isinstance(tags, list) or len(tags) > MAX_TAGS or not all(isinstance(t, str) and len(t) <= 64 for t in tags):
        raise invalid(f"tags must be a list of at most {MAX_TAGS} add ids")
    _shopper(store, shopper_id)
    with store.transaction() as conn:
        live = [r[0] for r in conn.rows_in("SELECT a.tag " + LIVE_ADDS + " AND a.tag IN (?*)", tags, (shopper_id,))]
        conn.executemany("INSERT INTO wishlist_removes(tag, shopper_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                         [(t, shopper_id) for t in live])
    return len(live)


# -- cards and phones ---------------------------------------------------------------------------
def card_name(name: str) -> str:
    """A card's or phone's name: 1-40 plain characters once stripped."""
    if not isinstance(name, str):
        raise invalid("a name is text")
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise invalid(f"a name is 1 to {NAME_MAX} characters")
    if not inputs.safe(name):
        raise invalid("a name may not hold control or direction characters")
    return name


def _sun_uid(store: HubStore, shopper_id: str, card_id: str) -> str | None:
    if not isinstance(card_id, str) or not card_id.startswith("sun-"):
        return None
    uids = [r[0] for r in store.all("SELECT uid FROM sun_cards WHERE shopper_id=?", (shopper_id,))]
    return next((uid for uid in uids if _sun_id(store, uid) == card_id), None)


def rename_card(store: HubStore, shopper_id: str, card_id: str, name: str) -> None:
    name = card_name(name)
    if isinstance(card_id, str) and store.one("UPDATE credentials SET name=? WHERE id=? AND shopper_id=? AND id<>'' "
                                              "RETURNING id", (name, card_id, shopper_id)):
        return
    uid = _sun_uid(store, shopper_id, card_id)
    if uid is None:
        raise not_yours("no such card for this shopper")
    store.conn.execute("UPDATE sun_cards SET name=? WHERE uid=? AND shopper_id=?", (name, uid, shopper_id))


def revoke_card(store: HubStore, shopper_id: str, card_id: str) -> None:
    """A lost card: unknown at every kiosk at once online, within one sync offline."""
    uid = _sun_uid(store, shopper_id, card_id)
    table, key, value = ("sun_cards", "uid", uid) if uid else ("credentials", "id", card_id)
    if not isinstance(value, str) or not value:
        raise not_yours("no such card for this shopper")
    with store.transaction() as conn:
        row = conn.execute(f"SELECT revoked FROM {table} WHERE {key}=? AND shopper_id=?", (value, shopper_id)).fetchone()
        if row is None:
            raise not_yours("no such card for this shopper")
        if not row[0]:
            conn.execute(f"UPDATE {table} SET revoked=1, revoked_at=? WHERE {key}=? AND shopper_id=?",
                         (time.time(), value, shopper_id))
            revocations.publish(conn, shopper_id, revocations.CREDENTIAL)


def rename_phone(store: HubStore, shopper_id: str, credential_id: str, name: str) -> None:
    name = card_name(name)
    if not isinstance(credential_id, str) or not store.one(
            "UPDATE phone_keys SET name=? WHERE credential_id=? AND shopper_id=? RETURNING credential_id",
            (name, credential_id, shopper_id)):
        raise not_yours("no such phone for this shopper")


def revoke_phone(store: HubStore, shopper_id: str, credential_id: str) -> None:
    credentials.revoke_phone(store, shopper_id, credential_id)


def add_phone(store: HubStore, shopper_id: str, credential_id: str, public_key: bytes) -> None:
    _shopper(store, shopper_id)
    credentials.register_phone(store, shopper_id, credential_id, public_key)
