"""Web shops save to the same wishlist (issue 12, part 6), end to end in a real headless Chromium
with a WebAuthn virtual authenticator: the reference web shop of the demo brand lotus
(hub/demo_shop.py) on its own loopback port, the real hub on another, the real kiosk service of
another brand (Sever Outdoor, Moscow) that the shopper shares with.

Emma (demo shopper 0, sharing with every brand) claims her card on the hub, then on the web shop:
two items saved while signed out (the shop's guest list), "Sign in with your shopper profile"
(authorization code + PKCE S256), the consent screen: the wishlist allowed, the other brands'
view refused; the guest list is merged once (a second merge call changes nothing). At the Sever
kiosk both items show with their stock; one is removed there with the kiosk offline while the web
shop saves it again: after the kiosk's sync the web's new add survives (observed remove: the
kiosk's remove named only the add it had seen). Emma revokes the shop's access on her Sharing
page: the shop's next call is refused and its page asks her to sign in again. Every shop page is
shot (the test's tmp_path, and build/test-output/web-shop/)."""
from __future__ import annotations

import hashlib
import socket
import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent / "hub"))
from browser import Browser, with_passkeys, claim as claim_card, chromedriver, make_browser  # noqa: E402,F401  (fixtures)

from hub import demo  # noqa: E402
from hub.app import HubSettings  # noqa: E402
from hub.demo_shop import COOKIE, DemoShop  # noqa: E402
from hub.server import EmbeddedHub  # noqa: E402
from kiosk.app import build_service, ensure_enrolled  # noqa: E402
from kiosk.config import load_config  # noqa: E402
from kiosk.results import ShopperResult  # noqa: E402
from tests.taps import card  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "build" / "test-output" / "web-shop"
EMMA = 0
OTHER = "wishlist.other_brands"


@pytest.fixture
def hub(hub_db):
    with EmbeddedHub(HubSettings(db_path=hub_db, demo=True, admin_token="admin-test")) as running:
        running.base = running.settings.public_url  # http://localhost:PORT: a WebAuthn relying party
        yield running


@pytest.fixture
def shop(hub):
    with DemoShop(hub.base) as running:
        yield running


@pytest.fixture
def sever(hub, tmp_path):
    """A kiosk of another brand (Sever Outdoor, Moscow Tverskaya), its own data dir."""
    config = load_config(tmp_path / "none.toml", environ={}, overrides={
        "data_dir": tmp_path / "sever-kiosk", "hub_timeout_s": 1.0, "sync_timeout_s": 2.0, "sync_interval_s": 0.2})
    ensure_enrolled(config, hub.url, "DEMO-SEVER-MSK")
    service = build_service(config, with_reader=False)
    service.prime()
    yield service
    service.stop()


def claim(b: Browser, hub, index: int) -> None:
    claim_card(b, hub.base, demo.token_for(index))


def shot(b: Browser, name: str) -> None:
    import shutil
    path = b.shot(name)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def live_tags(hub, shopper_id: str, gtin: str) -> set[str]:
    """The adds of `gtin` no remove has taken away (the hub's observed-remove set)."""
    return {r[0] for r in hub.store.all(
        "SELECT a.tag FROM wishlist_adds a LEFT JOIN wishlist_removes r ON r.tag = a.tag AND r.shopper_id = a.shopper_id "
        "WHERE a.shopper_id=? AND a.gtin=? AND r.tag IS NULL", (shopper_id, gtin))}


def shop_session(b: Browser, shop: DemoShop):
    sid = b.cookies()[COOKIE]["value"]
    return shop.sessions[hashlib.sha256(sid.encode()).hexdigest()]


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: connection refused


def tap(service, index: int):
    result = service.handle_tag(card(index))
    return result


def test_a_guest_list_merged_at_sign_in_reaches_another_brands_kiosk_and_survives_a_concurrent_remove(
        hub, shop, sever, make_browser):
    emma = hub.store.one("SELECT id FROM shoppers WHERE display_name='Emma'")[0]
    already = {r[0] for r in hub.store.all(
        "SELECT a.gtin FROM wishlist_adds a LEFT JOIN wishlist_removes r ON r.tag = a.tag AND r.shopper_id = a.shopper_id "
        "WHERE a.shopper_id=? AND r.tag IS NULL", (emma,))}
    b = with_passkeys(make_browser())
    claim(b, hub, EMMA)

    # -- signed out: two items into the shop's guest list ---------------------------------------------
    b.open(shop.url + "/")
    shot(b, "shop-products-signed-out")
    offered = [p.get_attribute("id")[2:] for p in b.find_all("#products .product")]
    assert len(offered) >= 10
    first, second = [g for g in offered if g not in already][:2]
    b.submit(f"#save-{first}")
    b.submit(f"#save-{second}")
    assert b.text("#guest-count") == "2"
    b.open(shop.url + "/wishlist")
    assert {i.get_attribute("id") for i in b.find_all("#wishlist .item")} == {f"w-{first}", f"w-{second}"}
    assert b.find("#guest-note")
    shot(b, "shop-guest-list")
    assert not live_tags(hub, emma, first) and not live_tags(hub, emma, second)  # nothing at the hub yet

    # -- sign in with the shopper profile: allow the wishlist, refuse the other brands' view -----------
    b.click("#sign-in")
    b.wait_url("/oauth/authorize", 20)
    assert "Lotus & Linen" in b.text("h1")
    shot(b, "hub-consent")
    other = b.find(f'input[name="scope_{OTHER}"]')
    assert other.is_selected()
    other.click()
    assert b.find('input[name="scope_wishlist"]').is_selected() and not other.is_selected()
    b.click("#allow")
    b.wait(lambda d: d.current_url.startswith(shop.url + "/wishlist"), 20, f"the shop's wishlist (at {b.url})")
    assert b.find("#signed-in") and b.find("#notice")
    shot(b, "shop-wishlist-signed-in")
    for gtin in (first, second):  # with the stock of each lotus store the hub holds for it
        stores = hub.store.all("SELECT s.name FROM inventory i JOIN stores s ON s.id = i.store_id "
                               "WHERE i.gtin=? AND s.brand_id='lotus'", (gtin,))
        assert len(b.find_all(f"#w-{gtin} .stock li")) == len(stores)
        assert all(name in b.text(f"#w-{gtin}") for (name,) in stores)
    shown = {i.get_attribute("id")[2:] for i in b.find_all("#wishlist .item")}
    assert {first, second} <= shown
    other_brands = {r[0] for r in hub.store.all("SELECT gtin FROM products WHERE brand_id <> 'lotus'")}
    assert not shown & other_brands  # the other brands' view was refused: lotus's own items only
    assert hub.store.one("SELECT state FROM consents WHERE shopper_id=? AND from_brand='*' AND to_brand='lotus'",
                         (emma,))[0] != "granted"  # the same ledger the kiosk and the shopper's page use
    # merged once: one live add each, with the guest item's event id
    session = shop_session(b, shop)
    merged = {i["gtin"]: i["event_id"] for i in session.last_merge}
    assert set(merged) == {first, second} and not session.guest
    for gtin in (first, second):
        assert live_tags(hub, emma, gtin) == {merged[gtin]}
    # a second merge call (a retry after a lost answer) changes nothing
    before = hub.store.one("SELECT COUNT(*) FROM wishlist_adds WHERE shopper_id=?", (emma,))[0]
    again = requests.post(hub.base + "/v1/channel/wishlist/merge", json={"items": session.last_merge}, timeout=10,
                          headers={"Authorization": f"Bearer {session.token['access_token']}"})
    assert again.status_code in (200, 201), again.text
    assert hub.store.one("SELECT COUNT(*) FROM wishlist_adds WHERE shopper_id=?", (emma,))[0] == before
    for gtin in (first, second):
        assert live_tags(hub, emma, gtin) == {merged[gtin]}
    # the wishlist read again: 304 behind the page (If-None-Match), the same page
    etag = session.etag
    assert etag
    b.open(shop.url + "/wishlist")
    assert shop_session(b, shop).etag == etag
    assert {first, second} <= {i.get_attribute("id")[2:] for i in b.find_all("#wishlist .item")}

    # -- at a kiosk of another brand Emma shares with: both items, with their stock --------------------
    at_kiosk = tap(sever, EMMA)
    assert isinstance(at_kiosk, ShopperResult) and at_kiosk.view.source == "hub"
    items = {i.gtin: i for i in at_kiosk.view.wishlist}
    assert {first, second} <= set(items)
    for gtin in (first, second):
        item = items[gtin]
        assert item.brand == "lotus" and item.title and item.price
        assert not item.available_here and item.online  # not on Sever's shelf; at lotus online

    # -- removed at the kiosk, offline, while the web shop saves it again ------------------------------
    online_url = sever.hub.base_url
    sever.hub.base_url = dead_url()  # the kiosk loses the hub
    try:
        removed = sever.remove_item(first)
        assert isinstance(removed, ShopperResult) and first not in {i.gtin for i in removed.view.wishlist}
        sever.end_session()
        b.open(shop.url + "/")
        assert b.find(f"#saved-{first}")  # the web still sees it: the kiosk's remove has not arrived
        b.submit(f"#save-{first}")  # the shopper saves it again on the web
        web_tags = live_tags(hub, emma, first) - {merged[first]}
        assert len(web_tags) == 1
        assert sever.status().outbox_depth >= 1
    finally:
        sever.hub.base_url = online_url
    sever.sync_now()
    assert sever.status().outbox_depth == 0
    # observed remove: the kiosk's remove took away only the add it had seen; the web's new add survives
    assert live_tags(hub, emma, first) == web_tags
    assert live_tags(hub, emma, second) == {merged[second]}
    b.open(shop.url + "/wishlist")
    assert {first, second} <= {i.get_attribute("id")[2:] for i in b.find_all("#wishlist .item")}
    shot(b, "shop-wishlist-after-sync")
    after = tap(sever, EMMA)
    assert {first, second} <= {i.gtin for i in after.view.wishlist}
    sever.end_session()

    # -- Emma takes the shop's access back on her Sharing page: the shop's next call is refused --------
    b.open(hub.base + "/me/sharing")
    assert "Lotus" in b.text("#grants")  # the "Web shops and apps" list, with its take-back button
    shot(b, "hub-sharing-web-shops")
    b.submit("form[action^='/me/grants/'] button")
    assert "can no longer use your profile" in b.text("#notice")
    from hub import oauth
    assert not [g for g in oauth.grants_of(hub.store, emma) if g["brand_id"] == "lotus"]
    token = shop_session(b, shop).token
    assert requests.get(hub.base + "/v1/channel/wishlist", timeout=10,
                        headers={"Authorization": f"Bearer {token['access_token']}"}).status_code == 401
    b.open(shop.url + "/wishlist")
    assert b.find("#sign-in-again") and b.find("#sign-in-again-link")
    assert not b.find_all("#signed-in") and not b.find_all("#wishlist")
    shot(b, "shop-sign-in-again")


def test_the_shop_is_in_the_shoppers_language_and_a_refused_consent_keeps_the_guest_list(hub, shop, make_browser):
    b = with_passkeys(make_browser("th"))
    claim(b, hub, EMMA)
    b.open(shop.url + "/?lang=vi")
    assert b.find("html").get_attribute("lang") == "vi"
    titles = [t.text for t in b.find_all("#products .product-title")]
    assert titles and any("màu" in t for t in titles)  # the catalog's Vietnamese titles
    shot(b, "shop-products-vi")
    gtin = b.find("#products .product").get_attribute("id")[2:]
    b.submit(f"#save-{gtin}")
    for lang in ("ru", "th", "en"):
        b.open(shop.url + f"/wishlist?lang={lang}")
        assert b.find("html").get_attribute("lang") == lang
        shot(b, f"shop-guest-list-{lang}")
    b.click("#sign-in")
    b.wait_url("/oauth/authorize", 20)
    b.click("#deny")
    b.wait(lambda d: d.current_url.startswith(shop.url + "/wishlist"), 20, f"the shop (at {b.url})")
    assert b.find("#notice") and b.find(f"#w-{gtin}")  # still the guest list, nothing lost
    assert not b.find_all("#signed-in")
    shot(b, "shop-consent-refused")
    # a callback with a state this browser never started is refused
    b.open(shop.url + "/callback?code=abc&state=forged")
    assert b.find("#error")
