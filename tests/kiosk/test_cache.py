"""The cache file's schema is versioned: an older kiosk's cache.db is migrated in place at
start (its rows kept), and a refetch is arranged where a migration adds data."""
import sqlite3

from kiosk.api import ShopperView
from kiosk.cache import MIGRATIONS, SCHEMA_VERSION, Cache


def test_a_version_1_cache_is_migrated_keeping_its_rows(tmp_path):
    path = tmp_path / "cache.db"
    conn = sqlite3.connect(path)
    for statement in filter(str.strip, MIGRATIONS[1].split(";")):
        conn.execute(statement)
    conn.execute("PRAGMA user_version=1")
    conn.execute("INSERT INTO inventory(gtin, quantity, location, title, fetched_at) VALUES "
                 "('09506000134352', 3, '4', 'Linen Shirt', 1.0)")
    conn.execute("INSERT INTO meta(key, value) VALUES ('inventory_cursor', '99'), ('offers_cursor', '7')")
    conn.execute("INSERT INTO shoppers(key, shopper_id, view, fetched_at) VALUES ('k', 's1', ?, 1e12)",
                 ('{"shopper": {"id": "s1", "display_name": "Lan"}}',))
    conn.commit()
    conn.close()

    cache = Cache(path)
    try:
        assert cache.rebuilt_from is None
        assert cache.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        stock = cache.inventory("09506000134352")
        assert (stock["quantity"], stock["title"], stock["price"], stock["brand_name"]) == (3, "Linen Shirt", "", "")
        assert cache.get_meta("inventory_cursor") == ""  # the next pull brings prices and brands
        assert cache.get_meta("offers_cursor") == ""  # v3: the next pull brings the offers' titles per language
        view, _ = cache.get_shopper("k", ttl_s=1e13)
        assert isinstance(view, ShopperView) and view.display_name == "Lan"
        cache.apply_inventory([{"gtin": "09506000134352", "quantity": 2, "title": "Linen Shirt", "price": "19.90",
                                "currency": "GBP", "brand": "harbour", "brand_name": "Harbour & Co"}], "100")
        assert cache.inventory("09506000134352")["price"] == "19.90"
    finally:
        cache.close()
    again = Cache(path)  # opening a current file changes nothing
    try:
        assert again.inventory("09506000134352")["brand_name"] == "Harbour & Co"
        assert again.get_meta("inventory_cursor") == "100"
    finally:
        again.close()


def test_a_version_2_cache_is_migrated_to_texts_per_language(tmp_path):
    """Issue 10: a cache written before texts per language keeps its rows, refetches both
    feeds, and then keeps each product's texts, description and availability."""
    path = tmp_path / "cache.db"
    conn = sqlite3.connect(path)
    for version in (1, 2):
        for statement in filter(str.strip, MIGRATIONS[version].split(";")):
            conn.execute(statement)
    conn.execute("PRAGMA user_version=2")
    conn.execute("INSERT INTO inventory(gtin, quantity, location, title, price, currency, fetched_at) VALUES "
                 "('08931000000009', 5, '9', 'Silk Hat, Forest', '1760000', 'VND', 1.0)")
    conn.execute("INSERT INTO offers(offer_id, body, fetched_at) VALUES ('lotus-00', ?, 1.0)",
                 ('{"id": "lotus-00", "title": "10% off", "kind": "brand"}',))
    conn.execute("INSERT INTO meta(key, value) VALUES ('inventory_cursor', '99'), ('offers_cursor', '7')")
    conn.commit()
    conn.close()

    from kiosk import api
    cache = Cache(path)
    try:
        assert cache.conn.execute("PRAGMA user_version").fetchone()[0] == 3
        old = cache.inventory("08931000000009")
        assert (old["title"], old["texts"], old["description"], old["availability"]) == ("Silk Hat, Forest", (), "", "")
        assert cache.get_meta("inventory_cursor") == cache.get_meta("offers_cursor") == ""
        assert [o["id"] for o in cache.offers()] == ["lotus-00"]  # an old body still reads
        item = api.inventory_item({"gtin": "08931000000009", "quantity": 4, "title": "Silk Hat, Forest",
                                   "description": "Hand-woven", "availability": "limited_availability",
                                   "texts": {"th": {"title": "หมวกผ้าไหม สีเขียวป่า", "description": ""}}})
        cache.apply_inventory([item], "100")
        stock = cache.inventory("08931000000009")
        assert stock["texts"] == (("th", "หมวกผ้าไหม สีเขียวป่า", ""),)
        assert (stock["description"], stock["availability"], stock["quantity"]) == (
            "Hand-woven", "limited_availability", 4)
        cache.apply_offers([{"id": "lotus-00", "deleted": True}], "8")
        assert cache.offers() == [] and cache.ended_offers() == {"lotus-00"}
    finally:
        cache.close()
