"""Issue 10 at the kiosk, through the real KioskService and the real hub on loopback: texts in
the shopper's language, offers only while valid (online and offline), and a kiosk its brand
removed from the fleet: it keeps its outbox, calls the hub no more, tells the technician, and
delivers its queue once enrolled again."""
import datetime as dt
import json
import time

import pytest

from hub import brands, demo
from hub.app import HubSettings
from hub.server import EmbeddedHub
from kiosk import api, catalog, doctor
from kiosk import errors as E
from kiosk.app import build_service
from kiosk.cli import main, tap_json
from kiosk.results import ErrorResult, ProductResult, ShopperResult
from tests.taps import card, product

THAI = 3  # สมชาย, locale th
PRODUCTS = {p["gtin"]: p for p in demo.products()}


def thai_title(gtin: str) -> str:
    return PRODUCTS[gtin]["texts"]["th"]["title"]


def is_thai(text: str) -> bool:
    return any("\u0e00" <= c <= "\u0e7f" for c in text)


def iso_in(seconds: float) -> str:
    return dt.datetime.fromtimestamp(time.time() + seconds, dt.timezone.utc).isoformat(timespec="seconds")


def restart(hub_db, port):
    return EmbeddedHub(HubSettings(db_path=hub_db), port=port)


# -- the contract's shapes -------------------------------------------------------------------

def test_texts_are_checked_bounded_and_optional():
    base = {"gtin": "08931000000009", "title": "Silk Hat", "brand": "lotus"}
    old_hub = api.WishlistItem.from_json(base)  # an older hub sends no texts at all
    assert old_hub.texts == () and old_hub.description == ""
    item = api.WishlistItem.from_json({**base, "description": "d" * 5000, "texts": {
        "TH": {"title": "ห" * 500, "description": "x"}, "pt_BR": {"title": "Chapéu"}}})
    assert [t[0] for t in item.texts] == ["pt-br", "th"]  # tags normalised (case, "_")
    assert len(item.texts[1][1]) == api.MAX_TITLE_CHARS and len(item.description) == api.MAX_DESCRIPTION_CHARS
    hash(item)  # views stay hashable and comparable
    for bad in ({"texts": ["th"]}, {"texts": {"th": "a title"}}, {"texts": {"th": {"title": 7}}},
                {"texts": {"not a tag!": {"title": "x"}}},
                {"texts": {f"x{i:03d}": {"title": "x"} for i in range(api.MAX_LANGUAGES + 1)}}):
        with pytest.raises(E.HubProtocolError):
            api.WishlistItem.from_json({**base, **bad})
    offer = api.Offer.from_json({"id": "o", "title": "10% off", "kind": "brand", "valid_from": "2026-01-01",
                                 "titles": {"th": "ลด 10%"}})
    assert offer.texts == (("th", "ลด 10%", ""),) and offer.valid_from == "2026-01-01"
    assert api.Offer.from_json(offer.to_json()) == offer  # the cache stores what it read
    with pytest.raises(E.HubProtocolError):
        api.Offer.from_json({"id": "o", "title": "x", "kind": "brand", "titles": {"th": {"title": "x"}}})
    assert api.offer_delta({"id": "o", "deleted": True}) == {"id": "o", "deleted": True}
    for bad in ({"gtin": "123", "quantity": 1}, {"gtin": "08931000000009", "quantity": "3"},
                {"gtin": "08931000000009", "quantity": True}, {"gtin": "08931000000009", "texts": "th"}):
        with pytest.raises(E.HubProtocolError):
            api.inventory_item(bad)
    row = api.inventory_item({"gtin": "08931000000009", "quantity": 2, "availability": "made up"})
    assert row["availability"] == "" and row["texts"] == ()


def test_the_localisation_rule_language_then_primary_subtag_then_the_default():
    item = api.WishlistItem.from_json({"gtin": "08931000000009", "title": "Silk Hat", "brand": "lotus", "texts": {
        "th": {"title": "หมวกผ้าไหม"}, "pt-br": {"title": "Chapéu"}, "vi": {"title": ""}}})
    assert catalog.title_in(item, "th") == catalog.title_in(item, "th-TH") == "หมวกผ้าไหม"
    assert catalog.title_in(item, "pt-BR") == "Chapéu"
    assert catalog.title_in(item, "pt") == "Silk Hat"  # pt-br is not a text for plain pt
    assert catalog.title_in(item, "vi") == "Silk Hat"  # an empty text falls through
    assert catalog.title_in(item, "ru") == catalog.title_in(item, "") == "Silk Hat"
    assert catalog.screen_language("th-TH", ("en", "vi", "ru", "th"), "en") == "th"
    assert catalog.screen_language("de", ("en", "th"), "en") == "en"


def test_offer_validity_is_the_stores_day_or_else_the_kiosks():
    bangkok = "Asia/Bangkok"
    noon = dt.datetime(2026, 12, 31, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=7))).timestamp()

    def offer(**kw):
        return api.Offer(offer_id="o", title="t", kind="brand", **kw)

    ends = offer(valid_until="2026-12-31")
    assert catalog.offer_live(ends, noon, bangkok)
    assert catalog.offer_live(ends, noon + 11.9 * 3600, bangkok)  # 23:54 in Bangkok: still that day
    assert not catalog.offer_live(ends, noon + 12 * 3600, bangkok)  # midnight after it: gone
    starts = offer(valid_from="2027-01-01")
    assert not catalog.offer_live(starts, noon, bangkok) and catalog.offer_live(starts, noon + 12 * 3600, bangkok)
    local_midnight = dt.datetime.combine(dt.date(2027, 1, 1), dt.time()).timestamp()  # no zone: the kiosk's time
    assert catalog.offer_live(ends, local_midnight - 1) and not catalog.offer_live(ends, local_midnight)
    timed = offer(valid_until="2026-12-31T18:00:00+07:00")
    assert catalog.offer_live(timed, noon) and not catalog.offer_live(timed, noon + 6 * 3600)
    assert not catalog.offer_live(offer(valid_until="next tuesday"), noon)  # unreadable: never shown
    assert catalog.live_offers([ends, starts], noon, bangkok, ended={"o"}) == ()


# -- a Thai shopper, through the real stack ----------------------------------------------------

def test_a_thai_shoppers_tap_shows_thai_titles(hub, enrolled, capsys):
    service = build_service(enrolled, with_reader=False)
    try:
        service.prime()
        shown = service.handle_tag(card(THAI))
        assert isinstance(shown, ShopperResult) and shown.view.locale == "th"
        out = tap_json(shown, enrolled.language, enrolled.languages)
        assert out["language"] == "th"
        assert [i["title"] for i in out["wishlist"]] == [thai_title(i.gtin) for i in shown.view.wishlist]
        offers = {o["id"]: o["title"] for o in out["offers"]}
        assert offers["lotus-00"] == demo.OFFER_TEXTS["brand"]["th"].format(brand="Lotus & Linen")
        gtin, read = next((g, r) for g, r in (product(n) for n in range(40))
                          if g not in {i.gtin for i in shown.view.wishlist} and PRODUCTS[g]["brand_id"] == "lotus")
        saved = service.handle_tag(read)
        assert isinstance(saved, ProductResult) and saved.saved
        assert tap_json(saved, enrolled.language, enrolled.languages)["title"] == thai_title(gtin)
        item = next(i for i in saved.view.wishlist if i.gtin == gtin)  # saved offline-first: from the cached feed
        assert item.pending and catalog.title_in(item, "th") == thai_title(gtin)
    finally:
        service.stop()
    # the command prints the same: the texts the screen would show
    assert main(["--data-dir", str(enrolled.data_dir), "tap", "--uri",
                 demo.shopper_uri(demo.token_for(THAI), demo.ID_HOST), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.splitlines()[0])
    assert printed["language"] == "th" and printed["shopper"]["display_name"] == "สมชาย"
    assert gtin in {i["gtin"] for i in printed["wishlist"]}  # the save made above, still queued: shown too
    assert all(i["title"] == thai_title(i["gtin"]) for i in printed["wishlist"])
    assert printed["offers"] and all(is_thai(o["title"]) for o in printed["offers"])  # a returning visit's offers


def test_a_language_without_a_text_falls_back_to_the_default_title(hub, enrolled):
    """A product the brand wrote no Thai for shows its default title to a Thai shopper; a
    shopper whose locale is th-TH reads Thai through the primary subtag."""
    hub.store.conn.execute("UPDATE shoppers SET locale='th-TH' WHERE id='shopper-03'")
    service = build_service(enrolled, with_reader=False)
    try:
        first = service.handle_tag(card(THAI)).view
        bare = first.wishlist[0].gtin
        texts = dict(PRODUCTS[bare]["texts"])
        del texts["th"]
        hub.store.conn.execute("UPDATE products SET texts=? WHERE gtin=?", (json.dumps(texts), bare))
        service.end_session()
        view = service.handle_tag(card(THAI)).view
        out = tap_json(ShopperResult(view), "en", enrolled.languages)
        assert out["language"] == "th"  # th-TH: the kiosk offers th
        titles = {i["gtin"]: i["title"] for i in out["wishlist"]}
        assert titles[bare] == PRODUCTS[bare]["title"]  # no Thai text: the brand's default title
        assert all(t == thai_title(g) for g, t in titles.items() if g != bare)
    finally:
        service.stop()


# -- offers: only while valid, online or offline -----------------------------------------------

def test_an_offer_cached_earlier_is_not_shown_offline_once_it_ended(hub_db, hub, enrolled):
    brands.upsert_offers(hub.store, "lotus", [
        {"id": "flash", "title": "Flash sale", "kind": "brand", "valid_until": iso_in(4),
         "titles": {"th": "ลดราคาด่วน"}},
        {"id": "later", "title": "Starts soon", "kind": "brand", "valid_from": iso_in(4)},
        {"id": "someday", "title": "Next year", "kind": "brand", "valid_from": iso_in(400 * 86400)}])
    service = build_service(enrolled, with_reader=False)
    try:
        service.sync.pull()  # the offers feed brings the two that start later, with their valid_from
        cached = {o["id"] for o in service.cache.offers()}
        assert {"lotus-flash", "lotus-later", "lotus-someday"} <= cached
        online = service.handle_tag(card(THAI)).view
        ids = {o.offer_id for o in online.offers}
        assert "lotus-flash" in ids and not {"lotus-later", "lotus-someday"} & ids
        flash = next(o for o in online.offers if o.offer_id == "lotus-flash")
        assert catalog.title_in(flash, "th") == "ลดราคาด่วน"
        service.end_session()
        port = hub.port
        hub.stop()
        time.sleep(max(0.0, dt.datetime.fromisoformat(flash.valid_until).timestamp() - time.time()) + 0.2)
        offline = service.handle_tag(card(THAI))
        assert isinstance(offline, ShopperResult) and offline.view.source == "cache"
        ids = {o.offer_id for o in offline.view.offers}
        assert "lotus-flash" not in ids  # ended while the kiosk was offline: never shown
        assert "lotus-later" in ids and "lotus-someday" not in ids  # started since (the feed had it); not yet
        assert "lotus-00" in ids
        guest = service.handle_tag(card(7))  # not cached here: a guest, shown this brand's live offers
        assert guest.guest and {"lotus-00", "lotus-later"} <= {o.offer_id for o in guest.view.offers}
        service.end_session()
    finally:
        service.stop()
    with restart(hub_db, port) as back:
        brands.end_offer(back.store, "lotus", "00")  # the brand ends it early
        service = build_service(enrolled, with_reader=False)
        try:
            service.sync.pull()  # arrives as {"id", "deleted": true}
            assert "lotus-00" not in {o["id"] for o in service.cache.offers()}
            assert "lotus-00" in service.cache.ended_offers()
            back.stop()
            offline = service.handle_tag(card(THAI))
            assert offline.view.source == "cache" and "lotus-00" not in {o.offer_id for o in offline.view.offers}
        finally:
            service.stop()


# -- a kiosk removed from the fleet ------------------------------------------------------------

class Counting:
    """Every request the kiosk's hub client sends."""

    def __init__(self, service):
        self.paths = []
        request = service.hub.session.request

        def counted(method, url, **kw):
            self.paths.append(url)
            return request(method, url, **kw)
        service.hub.session.request = counted


def _visit_then_offline_visit(hub, service):
    """An online visit with a product saved (its proof: the hub's check-in of this device), then,
    with the hub down, an offline visit of another shopper (its proof: the queued check-in)."""
    online = service.handle_tag(card(THAI))
    assert online.view.source == "hub"
    gtin_a, read_a = next((g, r) for g, r in (product(n) for n in range(40))
                          if g not in {i.gtin for i in online.view.wishlist})
    assert service.handle_tag(read_a).saved
    service.end_session()
    port = hub.port
    hub.stop()
    offline = service.handle_tag(card(0))
    assert offline.view.source == "cache" or offline.guest
    gtin_b, read_b = next((g, r) for g, r in (product(n) for n in range(40, 80))
                          if g not in {i.gtin for i in offline.view.wishlist})
    assert service.handle_tag(read_b).saved
    service.end_session()
    return port, gtin_a, gtin_b


def test_a_revoked_kiosk_keeps_its_outbox_stops_calling_and_delivers_after_enrolling_again(hub_db, hub, enrolled,
                                                                                            capsys):
    service = build_service(enrolled, with_reader=False)
    try:
        service.prime()
        port, gtin_a, gtin_b = _visit_then_offline_visit(hub, service)
        queued = service.outbox.depth()
        assert queued == 5  # the online visit's scan and add, the offline check-in, its scan and add
        device_id = service.identity.device_id
        with restart(hub_db, port) as back:
            brands.revoke_device(back.store, "lotus", device_id)
            service.sync_now()
            status = service.status()
            assert status.device_revoked and status.device_refused
            assert service.outbox.depth() == queued  # nothing deleted, nothing parked
            assert service.cache.shopper_ids() == set()  # cached shoppers forgotten
            counted = Counting(service)
            service.sync_now()
            service.sync._round()  # the worker's round: no drain, pull, heartbeat or probe
            refused = service.handle_tag(card(THAI))
            assert isinstance(refused, ErrorResult) and refused.code == "device_revoked"
            assert service.handle_tag(product(5)[1]).saved is False  # an anonymous scan: queued, not sent
            assert counted.paths == []  # sends nothing more
            assert service.outbox.depth() == queued + 1
    finally:
        service.stop()

    assert main(["--data-dir", str(enrolled.data_dir), "status"]) == 0
    said = capsys.readouterr().out
    assert "REMOVED FROM THE FLEET: enroll it again" in said
    checks = {c.name: c for c in doctor.run_checks("simulated", production=False, data_dir=enrolled.data_dir)}
    assert checks["device-token"].status == doctor.FAIL
    assert "removed from the fleet: enroll it again" in checks["device-token"].summary

    restarted = build_service(enrolled, with_reader=False)  # a restart remembers, and still calls nothing
    try:
        counted = Counting(restarted)
        restarted.sync._round()
        assert restarted.status().device_revoked and counted.paths == []
    finally:
        restarted.stop()

    with restart(hub_db, port) as back:
        assert main(["--data-dir", str(enrolled.data_dir), "enroll", "--hub", back.url, "--code", "DEMO"]) == 0
        fresh = build_service(enrolled, with_reader=False)
        try:
            assert fresh.identity.device_id != device_id
            assert not fresh.status().device_revoked and fresh.status().device_refused == ""
            sent = fresh.sync.drain()  # at once: no backoff carried over from the old identity
            assert sent["created"] == queued + 1 and sent["rejected"] == 0, fresh.outbox.parked()
            assert fresh.outbox.depth() == 0 and fresh.outbox.parked_count() == 0
            adds = {g for (g,) in back.store.all("SELECT gtin FROM wishlist_adds WHERE shopper_id IN "
                                                 "('shopper-03', 'shopper-00')")}
            assert {gtin_a, gtin_b} <= adds  # the old device's visit and the offline visit both delivered
            fresh.sync.heartbeat()
            beat = json.loads(back.store.one("SELECT heartbeat FROM devices WHERE id=?",
                                             (fresh.identity.device_id,))[0])
            assert abs(beat["sent_at"] - time.time()) < 60 and beat["free_disk_mb"] > 0
            assert fresh.handle_tag(card(THAI)).view.display_name == "สมชาย"
        finally:
            fresh.stop()


def test_the_technician_re_enrolls_a_revoked_kiosk_with_events_waiting(hub, enrolled):
    """The technician screen's enrollment (KioskService.reenroll) is refused while events wait
    for the hub, except for a refused or removed kiosk enrolling with that same hub again: then
    the same service carries on with its new identity and delivers what waited."""
    service = build_service(enrolled, with_reader=False)
    try:
        service.outbox.append(api.SCAN, {"gtin": product(1)[0]})
        assert service.reenroll(hub.url, "DEMO").code == "events_waiting"
        old_id = service.identity.device_id
        brands.revoke_device(hub.store, "lotus", old_id)
        service.sync_now()
        assert service.status().device_revoked
        assert service.reenroll("https://other.example", "DEMO").code == "events_waiting"
        again = service.reenroll(hub.url, "DEMO")
        assert again.ok and again.device_id != old_id and service.identity.device_id == again.device_id
        assert not service.status().device_revoked
        service.sync_now()  # its own sync worker may have sent it already: either way it is there once
        assert service.outbox.depth() == 0
        assert hub.store.one("SELECT count(*) FROM events WHERE type='scan' AND device_id=?", (again.device_id,))[0] == 1
        assert service.handle_tag(card(0)).view.display_name == "Emma"  # the new identity is heard
    finally:
        service.stop()


def test_heartbeat_carries_the_kiosk_clock_and_free_disk(hub, enrolled):
    service = build_service(enrolled, with_reader=False)
    try:
        sent = []
        beat = service.hub.heartbeat
        service.hub.heartbeat = lambda device_id, payload, timeout=None: (sent.append(payload),
                                                                           beat(device_id, payload, timeout))
        service.sync.heartbeat()
        payload = sent[0]
        assert isinstance(payload["sent_at"], float) and abs(payload["sent_at"] - time.time()) < 5
        assert isinstance(payload["free_disk_mb"], int) and payload["free_disk_mb"] > 0
        assert payload["reader_state"] and "outbox_depth" in payload
    finally:
        service.stop()
    client = service.hub
    client.revoked = "this kiosk was removed from the fleet"
    with pytest.raises(E.DeviceRevoked):  # a revoked client refuses every call itself, before any packet
        client.inventory("lotus-hcm")
