"""The shopper's own page (issue 11) in a real headless Chromium with a WebAuthn virtual
authenticator, against the real hub on loopback (SQLite and PostgreSQL), and what a kiosk of
the real kiosk service does next: claim a card and sign in; refuse sharing with a brand and tap
at that brand's kiosk (the other brands' items are gone, online and after one sync offline);
export and check the JSON against its schema; revoke a card and tap it (unknown); erase and tap
(unknown, the kiosk's cache holds nothing of them). Every page is shot in every language
(build/test-output/shopper-pages/ and the test's tmp_path), checked for untranslated text,
horizontal overflow at 200% zoom, and with axe-core (WCAG 2.2 AA rules) when it is installed."""
from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import Browser, with_passkeys, claim as claim_card, browser, chromedriver, make_browser  # noqa: E402,F401  (fixtures)

from hub import demo  # noqa: E402
from hub.app import HubSettings  # noqa: E402
from hub.server import EmbeddedHub  # noqa: E402
from kiosk.app import build_service  # noqa: E402
from kiosk.results import ErrorResult, ShopperResult  # noqa: E402
from tests.taps import card  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "build" / "test-output" / "shopper-pages"
AXE = REPO / "build" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
SCHEMA = REPO / "docs" / "shopper-export.schema.json"
EMMA = 0  # en; sharing granted with every brand; items at lotus and other brands
LANGS = ("en", "vi", "ru", "th")


@pytest.fixture
def hub(hub_db, card_key):
    with EmbeddedHub(HubSettings(db_path=hub_db, demo=True, admin_token="admin-test")) as running:
        running.base = running.settings.public_url  # http://localhost:PORT: a WebAuthn relying party
        yield running


def claim(b: Browser, hub, index: int) -> None:
    claim_card(b, hub.base, demo.token_for(index))


def wait_at(b: Browser, path: str, timeout: float = 20) -> None:
    """Until the browser is at exactly `path` (a query string aside)."""
    from urllib.parse import urlsplit
    b.wait(lambda d: urlsplit(d.current_url).path == path, timeout, f"{path} (at {b.url})")


def session_cookie(b: Browser) -> dict:
    return {"hub_me": b.cookies()["hub_me"]["value"]}


def kiosk(enrolled):
    service = build_service(enrolled, with_reader=False)
    service.prime()
    return service


def tap(service, index: int):
    result = service.handle_tag(card(index))
    service.end_session()
    return result


def brands_of(result) -> set[str]:
    return {i.brand for i in result.view.wishlist}


# -- claim, sign in ---------------------------------------------------------------------------

def test_a_card_is_claimed_with_a_passkey_and_then_signs_in_from_anywhere(hub, make_browser):
    b = with_passkeys(make_browser())
    b.open(f"{hub.base}/s/{demo.token_for(EMMA)}")
    assert b.text("h1") == "This card is not set up yet"
    assert "Emma" not in b.source  # holding the card shows no personal data
    b.click("#claim")
    b.wait_url("/me?m=claimed", 20)
    items = b.find_all("#wishlist .item-title")
    assert items and all(i.text for i in items)
    cookie = b.cookies()["hub_me"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    b.submit("#sign-out")
    b.wait_url("/me/sign-in?m=out")
    assert b.text("#notice") == "You are signed out."
    b.click("#sign-in")  # the discoverable passkey: no card, no user name
    wait_at(b, "/me")
    assert len(b.find_all("#wishlist .item-title")) == len(items)
    # the card's URL, now claimed, opened by someone else: only the sign-in step, which fails
    other = with_passkeys(make_browser())
    other.open(f"{hub.base}/s/{demo.token_for(EMMA)}")
    assert other.find("#card-claimed") and other.text("h1") == "Sign in to your profile"
    assert "Emma" not in other.source and not other.find_all("#wishlist")
    other.click("#sign-in")
    other.wait(lambda d: not other.find("#sign-in-status").get_attribute("hidden")
               and "alert" in other.find("#sign-in-status").get_attribute("class"), 20, "the refusal")
    assert other.url.endswith("/s/" + demo.token_for(EMMA)) and "hub_me" not in other.cookies()
    # the same passkey opens the page from the card's URL too
    b.open(f"{hub.base}/s/{demo.token_for(EMMA)}")
    wait_at(b, "/me")


# -- sharing, honoured at the kiosk --------------------------------------------------------------

def test_refused_sharing_is_honoured_at_the_next_tap_online_and_after_one_sync_offline(hub, enrolled,
                                                                                       make_browser):
    service = kiosk(enrolled)
    try:
        before = tap(service, EMMA)
        assert isinstance(before, ShopperResult) and brands_of(before) - {"lotus"}  # other brands shared
        b = with_passkeys(make_browser())
        claim(b, hub, EMMA)
        b.open(hub.base + "/me/sharing")
        assert b.text("#state-lotus") == "Shared"
        b.submit("#stop-lotus")
        assert b.text("#state-lotus") == "Not shared" and "Saved" in b.text("#notice")
        # a kiosk that had the shopper cached (the tap above) forgets them at its next sync
        shopper_id = before.view.shopper_id
        assert cached_rows(service, shopper_id) == 1
        service.sync.pull()
        assert cached_rows(service, shopper_id) == 0
        online = tap(service, EMMA)  # the next tap online: only lotus's own items
        assert isinstance(online, ShopperResult) and brands_of(online) == {"lotus"}
        assert online.view.hidden_items > 0
        hub.stop()
        offline = tap(service, EMMA)  # offline, from the cache the last tap refreshed: still only lotus's
        assert isinstance(offline, ShopperResult) and offline.view.source == "cache"
        assert brands_of(offline) <= {"lotus"}
    finally:
        service.stop()



def cached_rows(service, shopper_id: str) -> int:
    return service.cache.conn.execute("SELECT COUNT(*) FROM shoppers WHERE shopper_id=?", (shopper_id,)).fetchone()[0]


# -- take it with you -------------------------------------------------------------------------

def test_the_export_is_everything_in_the_documented_schema_and_the_wishlist_as_csv(hub, enrolled, make_browser):
    import jsonschema
    service = kiosk(enrolled)
    try:
        tap(service, EMMA)  # a check-in: one line in "who saw my data"
    finally:
        service.stop()
    b = with_passkeys(make_browser())
    claim(b, hub, EMMA)
    b.open(hub.base + "/me/data")
    assert b.find("#export-json").get_attribute("href").endswith("/me/export.json")
    got = requests.get(hub.base + "/me/export.json", cookies=session_cookie(b), timeout=10)
    assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
    data = got.json()
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text("utf-8"))).validate(data)
    shown = [e.text for e in (b.open(hub.base + "/me") or b).find_all("#wishlist .item-title")]
    assert len(data["wishlist"]) == len(shown) > 0
    assert any(a.get("what") == "checkin" for a in data["access_log"])
    raw = got.text
    token = demo.token_for(EMMA)
    assert token not in raw and hub.store.credential_hash("token:" + token) not in raw
    sheet = requests.get(hub.base + "/me/wishlist.csv", cookies=session_cookie(b), timeout=10)
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(sheet.content.decode("utf-8-sig"))))
    assert len(rows) == 1 + len(shown)
    assert requests.get(hub.base + "/me/export.json", timeout=10, allow_redirects=False).status_code == 303


# -- a lost card, an erased profile: unknown at the kiosk ------------------------------------

def test_a_revoked_card_is_unknown_at_the_kiosk_online_and_forgotten_offline_after_one_sync(hub, enrolled,
                                                                                            make_browser):
    service = kiosk(enrolled)
    try:
        before = tap(service, EMMA)
        assert isinstance(before, ShopperResult)
        b = with_passkeys(make_browser())
        claim(b, hub, EMMA)
        b.open(hub.base + "/me/cards")
        link = b.find("#cards a[id^=revoke-]")
        link.click()
        b.wait_url("/revoke")
        b.submit("#confirm-revoke")
        b.wait_url("/me/cards?m=revoked")
        assert "Revoked" in b.text("#cards")
        service.sync.pull()  # the revocation feed: the cached view goes
        assert cached_rows(service, before.view.shopper_id) == 0
        online = tap(service, EMMA)
        assert isinstance(online, ErrorResult) and online.code == "unknown_card"
        hub.stop()
        offline = tap(service, EMMA)  # nothing cached: never the profile
        assert not (isinstance(offline, ShopperResult) and offline.view.shopper_id)
    finally:
        service.stop()


def test_erase_forgets_the_shopper_everywhere_and_their_card_is_unknown(hub, enrolled, make_browser):
    service = kiosk(enrolled)
    try:
        before = tap(service, EMMA)
        shopper_id, name = before.view.shopper_id, before.view.display_name
        events_here = hub.store.one("SELECT COUNT(*) FROM events")[0]
        b = with_passkeys(make_browser())
        claim(b, hub, EMMA)
        b.open(hub.base + "/me/data")
        b.click("#erase")
        b.wait_url("/me/erase")
        b.submit("#confirm-erase")
        b.wait_url("/me/sign-in?m=erased")
        assert b.text("#notice") == "Your profile is erased."
        assert "hub_me" not in b.cookies()
        b.open(hub.base + "/me")
        wait_at(b, "/me/sign-in")
        service.sync.pull()
        assert cached_rows(service, shopper_id) == 0
        cache_bytes = b"".join(p.read_bytes() for p in Path(enrolled.data_dir).glob("cache.db*"))
        assert name.encode() not in cache_bytes and shopper_id.encode() not in cache_bytes
        online = tap(service, EMMA)
        assert isinstance(online, ErrorResult) and online.code == "unknown_card"
        # the stores' counts stay true: every event is still there, none names the shopper
        assert hub.store.one("SELECT COUNT(*) FROM events")[0] >= events_here
        assert hub.store.one("SELECT COUNT(*) FROM events WHERE shopper_id=?", (shopper_id,))[0] == 0
        assert hub.store.one("SELECT COUNT(*) FROM events WHERE body LIKE ?", (f"%{shopper_id}%",))[0] == 0
        b.click("#sign-in")  # the passkey is gone with the profile
        b.wait(lambda d: "alert" in (b.find("#sign-in-status").get_attribute("class") or ""), 20, "the refusal")
        assert "hub_me" not in b.cookies()
    finally:
        service.stop()


# -- every page, every language: shot, translated, readable at 200%, axe-clean -----------------

PAGES = ("card-unclaimed", "card-claimed", "card-revoked", "sign-in", "wishlist", "sharing", "access", "cards",
         "revoke", "data", "erase", "error")


def page_urls(hub, b: Browser) -> dict[str, str]:
    b.open(hub.base + "/me/cards")
    revoke = b.find("#cards a[id^=revoke-]").get_attribute("href")
    return {"card-unclaimed": f"/s/{demo.token_for(1)}", "card-claimed": f"/s/{demo.token_for(2)}",
            "card-revoked": f"/s/{demo.token_for(5)}", "sign-in": "/me/sign-in", "wishlist": "/me",
            "sharing": "/me/sharing", "access": "/me/access", "cards": "/me/cards",
            "revoke": revoke.split(hub.base, 1)[-1], "data": "/me/data", "erase": "/me/erase",
            "error": "/me/no-such-page"}


def sentences(text: str) -> set[str]:
    """The page's own sentences (long lines of words), which a translation must change."""
    return {line.strip() for line in text.splitlines() if len(line.strip()) >= 25 and len(line.split()) >= 4}


def overflow(b: Browser) -> int:
    return b.driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")


def axe_violations(b: Browser) -> list[str]:
    b.driver.execute_script(AXE.read_text("utf-8"))
    result = b.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})"
        ".then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' ' + v.nodes.map(n => n.target.join(' '))"
        ".slice(0, 3).join(' | '))), e => done(['axe failed: ' + e]));")
    return result


def test_every_page_in_every_language_is_translated_fits_at_200_percent_and_passes_axe(hub, enrolled,
                                                                                       make_browser):
    from hub import credentials
    assert AXE.exists(), "axe-core is installed by scripts/bootstrap.sh test (npm); run it"
    service = kiosk(enrolled)
    try:
        tap(service, EMMA)
    finally:
        service.stop()
    credentials.revoke_card(hub.store, "token", demo.token_for(5))
    hub.store.conn.execute("UPDATE credentials SET name='Blue card' WHERE shopper_id='shopper-00'")
    b = with_passkeys(make_browser())
    claim(b, hub, EMMA)
    claim(with_passkeys(make_browser()), hub, 2)  # someone else's card, claimed
    anonymous = make_browser()  # the card pages and the sign-in page as someone signed out sees them
    urls = page_urls(hub, b)
    english: dict[str, set[str]] = {}
    problems = []
    signed_in = b
    for lang in LANGS:
        for name in PAGES:
            b = anonymous if name.startswith("card-") or name == "sign-in" else signed_in
            b.open(f"{hub.base}{urls[name]}{'&' if '?' in urls[name] else '?'}lang={lang}")
            assert b.driver.execute_script("return document.documentElement.lang") == lang, (lang, name)
            assert "Traceback" not in b.source
            shot = b.shot(f"{lang}-{name}")
            (SHOTS).mkdir(parents=True, exist_ok=True)
            (SHOTS / shot.name).write_bytes(shot.read_bytes())
            text = b.text("body")
            if lang == "en":
                english[name] = sentences(text)
            else:
                left = english[name] & sentences(text)
                if left:
                    problems.append(f"{lang} {name}: untranslated {sorted(left)[:3]}")
            if overflow(b) > 1:
                problems.append(f"{lang} {name}: wider than the window at 1440 px")
            b.driver.set_window_size(640, 900)  # a 1280 px screen at 200% zoom
            try:
                if overflow(b) > 1:
                    problems.append(f"{lang} {name}: clipped sideways at 200% zoom")
                if lang in ("en", "th"):
                    b.driver.set_window_size(390, 844)  # a phone
                    if overflow(b) > 1:
                        problems.append(f"{lang} {name}: clipped sideways on a phone")
                    (SHOTS / f"{lang}-{name}-phone.png").write_bytes(b.driver.get_screenshot_as_png())
                    problems += [f"{lang} {name}: {v}" for v in axe_violations(b)]
            finally:
                b.driver.set_window_size(1440, 900)
            if lang in ("en", "th"):
                problems += [f"{lang} {name} (desktop): {v}" for v in axe_violations(b)]
    assert not problems, "\n".join(problems)
    assert len(list(SHOTS.glob("*.png"))) >= len(PAGES) * len(LANGS)


def test_a_phone_paired_on_the_page_checks_in_and_stops_when_removed(hub, enrolled, make_browser):
    from drivers import hce
    from drivers.base import HCE, TagRead
    from drivers.hce_phone import Phone
    phone = Phone.generate("emma-phone-1")
    b = with_passkeys(make_browser())
    claim(b, hub, EMMA)
    b.open(hub.base + "/me/cards")
    b.fill("#pairing", "not a code")
    b.submit("#add-phone")
    assert "pairing code is not right" in b.text("#error")  # and nothing was added
    assert not hub.store.all("SELECT 1 FROM phone_keys WHERE shopper_id='shopper-00'")
    b.open(hub.base + "/me/cards")
    b.fill("#pairing", f"{phone.credential_id}:{phone.public_key_bytes().hex()}")
    b.submit("#add-phone")
    assert "The phone is added" in b.text("#notice") and phone.credential_id in b.text("#phones")
    service = kiosk(enrolled)
    try:
        answer = hce.exchange(phone.process_apdu, kiosk_id=service.identity.device_id)
        shown = service.handle_tag(TagRead("test", HCE, hce=answer))
        assert isinstance(shown, ShopperResult) and shown.view.shopper_id == "shopper-00"
        service.end_session()
        b.open(hub.base + "/me/cards")
        b.find("#phones a.btn-danger-quiet").click()
        b.wait_url("/revoke")
        b.submit("#confirm-revoke")
        b.wait_url("/me/cards?m=revoked")
        answer = hce.exchange(phone.process_apdu, kiosk_id=service.identity.device_id)
        refused = service.handle_tag(TagRead("test", HCE, hce=answer))
        assert isinstance(refused, ErrorResult) and refused.code == "refused"
    finally:
        service.stop()
