"""A long outage (100,000 queued events drain with flat memory), a damaged cache file, and a
full disk: the kiosk keeps serving and loses nothing it confirmed."""
import os
import threading
import time

import pytest

from kiosk import api
from kiosk.app import build_service, ensure_enrolled
from hub import demo
from kiosk.results import ErrorResult, ProductResult, ShopperResult
from tests.taps import card, product
from tests.reliability.conftest import report


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture
def unthrottled_hub(hub_db):
    """The hub without its per-device flood limit: this test measures the kiosk's memory while
    it drains, not how long the limit makes a backlog of 100,000 events wait."""
    from hub.app import HubSettings
    from hub.server import EmbeddedHub

    with EmbeddedHub(HubSettings(db_path=hub_db, demo=True, device_rate=0)) as running:
        yield running


def test_long_outage_100k_events_drain_with_flat_memory(unthrottled_hub, kiosk_config):
    hub = unthrottled_hub
    ensure_enrolled(kiosk_config, hub.url, "DEMO")
    service = build_service(kiosk_config, with_reader=False)
    gtins = [p["gtin"] for p in demo.products()]
    made = []
    refs = []  # 20 visits checked in live; every event names its visit's check-in (the proof)
    for n in range(20):
        shown = service.handle_tag(card(n))
        refs.append({"checkin": shown.event_id, "shopper_id": shown.view.shopper_id})
        service.end_session()
    started = time.monotonic()
    for i in range(100_000):  # queued through the real, fsync'd append while the hub is "away"
        made.append(service.outbox.append(api.SCAN if i % 3 else api.WISHLIST_ADD,
                                          {**refs[i % 20], "gtin": gtins[i % len(gtins)]})
                    ["event_id"])
    queued_s = time.monotonic() - started
    samples = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            samples.append(rss_mb())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    before = rss_mb()
    sampler.start()
    t = time.monotonic()
    try:
        sent = service.sync.drain(honour_backoff=False)
    finally:
        stop.set()
        sampler.join()
    drain_s = time.monotonic() - t
    received = {r[0] for r in hub.store.all("SELECT event_id FROM events")}
    service.stop()
    lost = set(made) - received
    report("long outage", events_made=len(made), delivered=len(set(made) & received), lost=len(lost),
           duplicates=sent["duplicate"], queue_s=round(queued_s, 1), drain_s=round(drain_s, 1),
           events_per_s=int(len(made) / drain_s), rss_before_mb=round(before, 1),
           rss_peak_mb=round(max(samples), 1))
    assert sent["created"] == 100_000 and not lost
    assert max(samples) - before < 40  # memory stays flat: batches, not the whole queue


@pytest.mark.parametrize("damage", ["header", "middle"])
def test_damaged_cache_is_moved_aside_and_rebuilt_outbox_untouched(hub, kiosk_config, damage):
    ensure_enrolled(kiosk_config, hub.url, "DEMO")
    service = build_service(kiosk_config, with_reader=False)
    service.prime()
    assert isinstance(service.handle_tag(card(0)), ShopperResult)
    service.end_session()
    for i in range(40):
        service.outbox.append(api.SCAN, {"gtin": demo.products()[i]["gtin"]})
    service.cache.checkpoint()
    service.stop()
    pending = build_service(kiosk_config, with_reader=False)
    waiting = pending.outbox.all_event_ids()
    pending.stop()
    path = kiosk_config.cache_path
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(0 if damage == "header" else size // 2)
        f.write(os.urandom(4096))

    service = build_service(kiosk_config, with_reader=False)
    try:
        status = service.status()
        assert status.cache_rebuilt and service.cache.rebuilt_from.exists()
        assert service.outbox.all_event_ids() == waiting  # not one queued event touched
        shown = service.handle_tag(card(0))  # keeps serving, and caches again
        assert isinstance(shown, ShopperResult) and shown.view.source == "hub"
        assert service.sync_now()["created"] >= len(waiting)
    finally:
        service.stop()
    report(f"damaged cache ({damage})", queued=len(waiting), lost=0, rebuilt=True)


def test_full_disk_keeps_serving_and_loses_nothing_confirmed(hub, kiosk_config):
    ensure_enrolled(kiosk_config, hub.url, "DEMO")
    service = build_service(kiosk_config.replace(low_disk_bytes=10**18), with_reader=False)
    try:
        service.prime()
        assert service.handle_tag(card(0)).view.source == "hub"  # Emma is cached
        service.end_session()
        hub.server.should_exit = True  # offline, so everything stays queued
        hub.thread.join(5)
        confirmed = []
        shown = service.handle_tag(card(0))
        confirmed.append(shown.event_id)
        conn = service.outbox.conn
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={pages + 2}")  # the disk fills up
        refused = 0
        for n in range(150):
            result = service.handle_tag(product(n)[1])
            if isinstance(result, ProductResult) and result.undo_token:
                confirmed.append(result.undo_token)
            elif not (isinstance(result, ProductResult) and result.already_saved):
                assert isinstance(result, ErrorResult) and result.code == "storage"
                refused += 1
        assert refused > 0, "the outbox never filled"
        status = service.status()
        assert status.low_disk
        again = service.handle_tag(card(0))  # still serves the shopper from the cache
        assert isinstance(again, ShopperResult) and again.view.display_name == "Emma"
        assert again.view.source == "cache"
        ids = set(service.outbox.all_event_ids())
        assert set(confirmed) <= ids
    finally:
        service.stop()
    report("full disk", confirmed=len(confirmed), refused_honestly=refused, lost=0, low_disk_flagged=True)
