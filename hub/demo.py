"""The demo world seeded into a store: for the demo, the CLI and the tests, through the same
calls a brand's feeds make where there are some. What the world holds is hub/demo_data.py
(every name of it is read from here too). Seeding is idempotent: a hub restarted on the same
file keeps its data, and a demo hub seeded before issue 9 or 10 gets what they added, once.

    seed(store)
    for card in demo_cards(): print(card["uri"])
"""
from __future__ import annotations

import datetime
import random
import time
import uuid

from hub import credentials
from hub.demo_data import (BRAND_PLACES, BRANDS, DEMO_PIN, ENROLLMENT_CODE, OLD_DEMO_PIN, SHOPPERS, SHOPS, STAFF,
                           STAFF_ROLES, allows_staff_search, brand_key, card_id, fleet_token, offer_rows, pin_hash,
                           product_image, products, token_for)
from hub.store import HubStore, search_key
# The world's data, read from here by the CLI, the benches and the tests:
from kiosk.api import shopper_uri  # noqa: F401
from hub.demo_data import (BRANDS_BY_ID, COLOURS, ID_HOST, OFFER_TEXTS, PRODUCTS_PER_BRAND, TITLE_FORMS,  # noqa: F401
                           WORDS, demo_cards, demo_products, gtin13, page_path, product_texts)


def _done(answer: dict, what: str) -> None:
    """The demo world is fed like a brand's: a refused row is a bug in the demo data."""
    refused = [r for r in answer["results"] if r["status"] == "rejected"]
    if refused:
        raise RuntimeError(f"the demo {what} feed was refused: {refused[:3]}")


def seed_brands(store: HubStore, rng: random.Random, catalogue: list[dict], until: str) -> None:
    """The brands' side of the demo world, through the same calls the brand API makes: each
    brand, its stores, catalog (vi, ru and th titles), images, stock, offers and its codes."""
    from hub import brands
    for brand_id, name, _, currency, _, shops, _, _ in BRANDS:
        brands.create_brand(store, brand_id, name, "en", key=brand_key(brand_id))
        zone, languages = BRAND_PLACES[brand_id]
        _done(brands.upsert_stores(store, brand_id, [
            {"store_code": sid.split("-", 1)[1], "name": shop, "city": city, "currency": currency,
             "timezone": zone, "languages": languages} for sid, shop, city in shops]), "stores")
        mine = [p for p in catalogue if p["brand_id"] == brand_id]
        _done(brands.upsert_products(store, brand_id, [
            {"gtin": p["gtin"], "title": p["title"], "price": p["price"], "currency": p["currency"],
             "online": bool(p["online"]), "texts": p["texts"]} for p in mine]), "products")
        for p in mine:
            brands.set_image(store, brand_id, p["gtin"], product_image(p["title"], p["colour"], p["seed"]))
        for sid, _, _ in shops:
            code = sid.split("-", 1)[1]
            rows = []
            for p in mine:  # every brand product is listed; about a quarter not stocked here
                quantity = rng.choice([0, 1, 2, 3, 5, 8, 12]) if rng.random() < 0.75 else 0
                rows.append({"store_code": code, "id": p["gtin"], "quantity": quantity,
                             "instore_product_location": str(rng.randint(1, 12))})
            _done(brands.apply_stock(store, brand_id, rows), "stock")
            brands.create_code(store, brand_id, code, expires_in_s=None, reusable=True, code=f"DEMO-{sid.upper()}")
        _done(brands.upsert_offers(store, brand_id, offer_rows(brand_id, rng.sample(mine, 4), until)), "offers")
    brands.create_code(store, BRANDS[0][0], BRANDS[0][5][0][0].split("-", 1)[1], expires_in_s=None, reusable=True,
                       code=ENROLLMENT_CODE)


def seed(store: HubStore) -> bool:
    """Load the demo world once; returns False when it was already there."""
    if store.one("SELECT 1 FROM settings WHERE key='demo_seeded'"):
        seed_trust(store)  # a demo hub seeded before issue 9
        seed_brand_texts(store)  # ... or before issue 10
        return False
    rng = random.Random(2026)
    catalogue = products()
    now = time.time()
    until = (datetime.date.today() + datetime.timedelta(days=90)).isoformat()
    with store.transaction() as conn:  # the brands' feeds join this one transaction: all or nothing
        seed_brands(store, rng, catalogue, until)
        brand_ids = [b[0] for b in BRANDS]
        for i, (display, full, locale) in enumerate(SHOPPERS):
            shopper_id = f"shopper-{i:02d}"
            conn.execute("INSERT INTO shoppers(id, display_name, locale, role, allow_staff_search, created_at) "
                         "VALUES (?,?,?,?,?,?)", (shopper_id, display, locale, "shopper", int(allows_staff_search(i)),
                                                  now - 90 * 86400))
            conn.execute("INSERT INTO staff_directory(shopper_id, full_name, search_key) VALUES (?,?,?)",
                         (shopper_id, full, search_key(full)))
            # unclaimed: no passkey yet (the shopper's page claims the card on its first visit)
            conn.execute(credentials.CARD_SQL, credentials.card_row(
                store.credential_hash(f"token:{token_for(i)}"), shopper_id, "token", now - 90 * 86400, card_id(i)))
            # wishlists across 2-3 brands: the own brand of the demo store always among them
            brands = [brand_ids[0], *rng.sample(brand_ids[1:], 1 + i % 2)] if i < 10 else rng.sample(brand_ids, 2)
            for brand_id in brands:
                for p in rng.sample([p for p in catalogue if p["brand_id"] == brand_id], rng.randint(2, 4)):
                    tag = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                    shop = SHOPS[brand_id][0]  # added at a kiosk of the product's brand
                    conn.execute("INSERT INTO wishlist_adds(tag, shopper_id, gtin, received_at, channel, brand_id, "
                                 "store_id) VALUES (?,?,?,?,?,?,?)",
                                 (tag, shopper_id, p["gtin"], now - rng.randint(3600, 60 * 86400), "kiosk", brand_id, shop))
            for brand_id in brand_ids:  # sharing: granted / undecided / refused, by shopper
                state = ("granted", None, "refused")[i % 3] if i != 1 else "granted"
                if state:
                    conn.execute("INSERT INTO consents(shopper_id, from_brand, to_brand, state, changed_at, via, store_id) "
                                 "VALUES (?,?,?,?,?,?,?)",
                                 (shopper_id, "*", brand_id, state, now - 30 * 86400, "kiosk", SHOPS[brand_id][0]))
            if i % 4 in (1, 2):  # returning / lapsed shoppers; the rest are first-time visitors
                last = now - (rng.randint(1, 20) if i % 4 == 1 else rng.randint(100, 300)) * 86400
                for brand_id in brand_ids:
                    conn.execute("INSERT INTO visits(shopper_id, brand_id, count, last_at) VALUES (?,?,?,?)",
                                 (shopper_id, brand_id, rng.randint(1, 9), last))
        for staff_id, name, role, uid in STAFF:
            conn.execute("INSERT INTO shoppers(id, display_name, locale, role, pin_hash, created_at) VALUES (?,?,?,?,?,?)",
                         (staff_id, name, "en", role, pin_hash(DEMO_PIN), now))
            conn.execute(credentials.CARD_SQL, credentials.card_row(
                store.credential_hash(f"uid:{uid.lower()}"), staff_id, "uid", now, card_id(staff_id)))
        conn.execute("INSERT INTO settings(key, value) VALUES ('demo_seeded', '1')")
    seed_trust(store)
    store.set_setting("demo_brands_seeded", "1")
    return True


def seed_brand_texts(store: HubStore) -> bool:
    """What issue 10 added to a demo hub seeded before it, once, through the brand calls: the
    demo brand keys, the stores' time zones and languages, the products' vi, ru and th titles."""
    from hub import brands
    if store.get_setting("demo_brands_seeded"):
        return False
    with store.transaction():
        for brand_id, _, _, currency, _, shops, _, _ in BRANDS:
            if not store.one("SELECT 1 FROM brands WHERE id=?", (brand_id,)):
                continue
            if not store.one("SELECT 1 FROM brand_keys WHERE brand_id=?", (brand_id,)):
                brands.create_key(store, brand_id, "admin", key=brand_key(brand_id))
            zone, languages = BRAND_PLACES[brand_id]
            names = dict(store.all("SELECT id, name FROM stores WHERE brand_id=?", (brand_id,)))
            brands.upsert_stores(store, brand_id, [
                {"store_code": sid.split("-", 1)[1], "name": names.get(sid, shop), "city": city, "currency": currency,
                 "timezone": zone, "languages": languages} for sid, shop, city in shops])
            mine = {r[0]: r for r in store.all("SELECT gtin, title, price, currency, online FROM products "
                                               "WHERE brand_id=?", (brand_id,))}
            brands.upsert_products(store, brand_id, [
                {"gtin": p["gtin"], "title": mine[p["gtin"]][1], "price": mine[p["gtin"]][2],
                 "currency": mine[p["gtin"]][3], "online": bool(mine[p["gtin"]][4]), "texts": p["texts"]}
                for p in products() if p["gtin"] in mine])
        store.set_setting("demo_brands_seeded", "1")
    return True


def seed_trust(store: HubStore) -> bool:
    """What issue 9 added to the demo world, once (so a demo hub seeded before it keeps
    working after its upgrade, and what a shopper or admin changed later is never undone):
    staff roles, per-brand staff search for the shoppers who allow it (every brand; search
    still finds them only where they have a visit or a wishlist item), the 6-digit PIN."""
    if store.one("SELECT 1 FROM settings WHERE key='demo_trust_seeded'"):
        return False
    old_hash = pin_hash(OLD_DEMO_PIN)
    with store.transaction() as conn:
        staff_ids = {r[0] for r in conn.execute("SELECT id FROM shoppers WHERE role IN ('staff','technician')").fetchall()}
        conn.executemany("INSERT INTO staff_roles(staff_id, brand_id, store_id) VALUES (?,?,?) ON CONFLICT DO NOTHING",
                         [r for r in STAFF_ROLES if r[0] in staff_ids])
        for staff_id, _, _, _ in STAFF:  # the old 4-digit demo PIN, only where it was never changed
            conn.execute("UPDATE shoppers SET pin_hash=? WHERE id=? AND pin_hash=?", (pin_hash(DEMO_PIN), staff_id, old_hash))
        shoppers = {r[0] for r in conn.execute("SELECT id FROM shoppers WHERE erased=0 AND role='shopper'").fetchall()}
        conn.executemany("INSERT INTO staff_search(shopper_id, brand_id) VALUES (?,?) ON CONFLICT DO NOTHING",
                         [(f"shopper-{i:02d}", b[0]) for i in range(len(SHOPPERS)) for b in BRANDS
                          if allows_staff_search(i) and f"shopper-{i:02d}" in shoppers])
        conn.execute("INSERT INTO settings(key, value) VALUES ('demo_trust_seeded', '1') ON CONFLICT(key) DO NOTHING")
    return True


def seed_fleet(store: HubStore, brands: int = 4, stores: int = 50, kiosks: int = 500, shoppers: int = 5000) -> dict:
    """A chain-sized world on top of the demo one, for bench/bench_hub.py: `stores` stores over
    the demo's first `brands` brands, `kiosks` enrolled kiosks spread over them, `shoppers`
    shoppers with card tokens, small wishlists and sharing granted, stock in every store."""
    seed(store)
    rng = random.Random(7)
    brand_ids = [b[0] for b in BRANDS[:brands]]
    catalogue = products()
    gtins = {b: [p["gtin"] for p in catalogue if p["brand_id"] == b] for b in brand_ids}
    store_ids = []
    with store.transaction() as conn:
        for n in range(stores):
            brand_id = brand_ids[n % len(brand_ids)]
            store_id = f"{brand_id}-fleet-{n:03d}"
            store_ids.append((brand_id, store_id))
            conn.execute("INSERT INTO stores(id, brand_id, code, name, city, currency) VALUES (?,?,?,?,?,?) "
                         "ON CONFLICT(id) DO NOTHING", (store_id, brand_id, f"fleet-{n:03d}", f"Fleet store {n}", "Fleet", "USD"))
            store.add_enrollment_code(f"FLEET-{n:03d}", brand_id, store_id, reusable=True)
            rows = []
            for gtin in gtins[brand_id]:
                rows.append((store_id, gtin, rng.choice([0, 1, 3, 8]), str(rng.randint(1, 12)),
                             store.next_version(conn, "inventory")))
            conn.executemany("INSERT INTO inventory(store_id, gtin, quantity, location, version) VALUES (?,?,?,?,?) "
                             "ON CONFLICT(store_id, gtin) DO NOTHING", rows)
        people, creds, adds, consents = [], [], [], []
        for i in range(shoppers):
            shopper_id = f"fleet-{i:06d}"
            people.append((shopper_id, f"Shopper {i}", ("en", "vi", "ru", "th")[i % 4], "shopper", 0))
            creds.append(credentials.card_row(store.credential_hash(f"token:{fleet_token(i)}"), shopper_id, "token",
                                              card_id=card_id(shopper_id)))
            for brand_id in rng.sample(brand_ids, 2):
                for gtin in rng.sample(gtins[brand_id], 3):
                    adds.append((str(uuid.UUID(int=rng.getrandbits(128), version=4)), shopper_id, gtin, time.time()))
            consents += [(shopper_id, "*", b, "granted") for b in brand_ids]
        conn.executemany("INSERT INTO shoppers(id, display_name, locale, role, allow_staff_search) VALUES (?,?,?,?,?) "
                         "ON CONFLICT(id) DO NOTHING", people)
        conn.executemany(credentials.CARD_SQL + " ON CONFLICT DO NOTHING", creds)
        conn.executemany("INSERT INTO wishlist_adds(tag, shopper_id, gtin, received_at) VALUES (?,?,?,?) "
                         "ON CONFLICT DO NOTHING", adds)
        conn.executemany("INSERT INTO consents(shopper_id, from_brand, to_brand, state) VALUES (?,?,?,?) "
                         "ON CONFLICT DO NOTHING", consents)
    fleet = []
    for k in range(kiosks):
        n = k % stores
        enrolled = store.enroll(f"FLEET-{n:03d}", f"fleet-kiosk-{k}")
        fleet.append({"device_id": enrolled["device_id"], "device_token": enrolled["device_token"],
                      "brand_id": enrolled["brand_id"], "store_id": enrolled["store_id"]})
    return {"kiosks": fleet, "shopper_tokens": [fleet_token(i) for i in range(shoppers)], "gtins": gtins}
