"""Sync through a bad network and a hub killed mid-batch: nothing lost, nothing doubled,
and no hot loop. Compares event ids, not counts."""
import random
import sqlite3
import time

from kiosk import api
from kiosk.app import build_service, ensure_enrolled
from hub import demo
from tests.taps import card, product
from tests.reliability.conftest import report, route_through
from tests.reliability.faultproxy import FaultProxy, Scripted, wait_until

FAULTS = {"pass": 0.5, "drop": 0.06, "reset": 0.06, "stall": 0.05, "truncate": 0.07, "http500": 0.07,
          "http429": 0.07, "lost_answer": 0.12}


def hub_events(db):
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT event_id FROM events")], \
            [r[0] for r in conn.execute("SELECT tag FROM wishlist_adds")]
    finally:
        conn.close()


def offline_checkin(service, index):
    """A check-in queued as an offline kiosk does: the card's credential, verified on sync; the
    visit's events point at it (the proof of whose they are)."""
    event = service.outbox.append(api.CHECKIN, {"credential": {"kind": "token", "token": demo.token_for(index)},
                                                "shopper_id": f"shopper-{index:02d}"})
    return event, {"checkin": event["event_id"], "shopper_id": f"shopper-{index:02d}"}


def kiosk_through(proxy_url, hub_url, config):
    route_through(config, hub_url, proxy_url)
    fast = config.replace(hub_timeout_s=0.5, sync_timeout_s=1.0, sync_interval_s=0.1,
                          backoff_base_s=0.2, backoff_cap_s=1.5, batch_size=25, max_retry_after_s=2)
    return build_service(fast, with_reader=False)


def test_bad_network_and_hub_killed_mid_batch(hub_process, hub_db, kiosk_config):
    rng = random.Random(4242)
    plan = Scripted(rng, FAULTS)
    proxy = FaultProxy(("127.0.0.1", hub_process.port), plan, stall_s=1.5).start()
    service = kiosk_through(proxy.url, hub_process.url, kiosk_config)
    service.sync.start()
    confirmed, adds = [], []
    started = time.monotonic()
    try:
        outage = None
        for round_no in range(40):
            shown = service.handle_tag(card(round_no % 20))
            assert shown.event_id, shown
            confirmed.append(shown.event_id)
            for n in rng.sample(range(150), 5):
                result = service.handle_tag(product(n)[1])
                if result.undo_token:
                    confirmed.append(result.undo_token)
                    adds.append(result.undo_token)
            service.end_session()
            if round_no == 15:  # the hub dies mid-batch, comes back a moment later
                hub_process.kill()
                outage = time.monotonic(), service.sync.requests_made
                time.sleep(1.0)
                hub_process.start()
                outage = (time.monotonic() - outage[0], service.sync.requests_made - outage[1])
            time.sleep(0.02)
        plan.enabled = False  # the network heals
        assert wait_until(lambda: service.outbox.depth() == 0, timeout=90), service.outbox.depth()
        elapsed = time.monotonic() - started
    finally:
        service.sync.stop()
        proxy.stop()
    received, tags = hub_events(hub_db)
    lost = set(confirmed) - set(received)
    report("bad network", events_made=len(confirmed), delivered=len(set(confirmed) & set(received)),
           lost=len(lost), duplicates=len(received) - len(set(received)), requests=service.sync.requests_made,
           faults=dict(proxy.counts), outage_s=round(outage[0], 1), requests_during_outage=outage[1],
           seconds=round(elapsed, 1))
    assert not lost
    assert len(received) == len(set(received))
    assert sorted(t for t in tags if t in set(adds)) == sorted(adds)  # each add applied exactly once
    assert service.outbox.parked() == []
    # bounded retrying: while the hub was dead, backoff (>= 0.2 s) kept requests few
    assert outage[1] <= outage[0] / 0.2 + 3
    service.stop()


def test_lost_answer_is_absorbed_as_duplicates(hub_process, hub_db, kiosk_config):
    plan = Scripted(random.Random(1), first=["pass", "lost_answer", "lost_answer"])
    proxy = FaultProxy(("127.0.0.1", hub_process.port), plan).start()
    service = kiosk_through(proxy.url, hub_process.url, kiosk_config)
    try:
        service.hub.health()  # connection 0
        visit, ref = offline_checkin(service, 3)
        ids = [visit["event_id"]] + [service.outbox.append(api.WISHLIST_ADD, {**ref, "gtin": demo.products()[i]["gtin"]})
                                     ["event_id"] for i in range(10)]
        first = service.sync.drain(honour_backoff=False)  # committed on the hub, answer lost
        assert first["created"] == 0 and service.outbox.depth() == 11
        second = service.sync.drain(honour_backoff=False)  # answer lost again
        third = service.sync.drain(honour_backoff=False)
        assert third["duplicate"] == 11 and third["created"] == 0 and service.outbox.depth() == 0
    finally:
        proxy.stop()
        service.stop()
    received, tags = hub_events(hub_db)
    report("lost answer", events_made=11, delivered=len(set(ids) & set(received)), duplicates_absorbed=third["duplicate"],
           lost=len(set(ids) - set(received)))
    assert set(ids) <= set(received) and sorted(t for t in tags if t in ids) == sorted(ids[1:])
    assert second["created"] == 0


def test_poison_event_is_parked_and_the_rest_flow(hub, kiosk_config):
    ensure_enrolled(kiosk_config, hub.url, "DEMO")
    service = build_service(kiosk_config, with_reader=False)
    try:
        visit, ref = offline_checkin(service, 1)
        good = [visit] + [service.outbox.append(api.WISHLIST_ADD, {**ref, "gtin": demo.products()[i]["gtin"]})
                          for i in range(3)]
        poison = service.outbox.append(api.WISHLIST_ADD, {**ref, "gtin": "09999999999994"})
        more = [offline_checkin(service, 1)[0] for _ in range(3)]
        sent = service.sync.drain(honour_backoff=False)
        assert sent == {"created": 7, "duplicate": 0, "rejected": 1, "batches": 1}
        parked = service.status().parked_events
        assert [p["event_id"] for p in parked] == [poison["event_id"]] and "unknown product" in parked[0]["reason"]
        assert service.outbox.depth() == 0
        # a technician re-sends it: still refused, still parked, nothing else disturbed
        assert service.outbox.requeue() == 1
        assert service.sync.drain(honour_backoff=False)["rejected"] == 1
        assert len(service.outbox.parked()) == 1
    finally:
        service.stop()
    received = {r[0] for r in hub.store.all("SELECT event_id FROM events")}
    assert {e["event_id"] for e in good + more} <= received and poison["event_id"] not in received
    report("poison event", events_made=8, delivered=7, parked=1, lost=0)


def test_retry_after_is_honoured_without_a_hot_loop(hub, kiosk_config):
    plan = Scripted(random.Random(2), {"http429": 1.0})
    proxy = FaultProxy(("127.0.0.1", hub.port), plan, retry_after=1).start()
    route_through(kiosk_config, hub.url, proxy.url)
    service = build_service(kiosk_config.replace(sync_interval_s=0.05, backoff_base_s=0.05,
                                                 backoff_cap_s=0.2), with_reader=False)
    offline_checkin(service, 1)
    service.sync.start()
    try:
        time.sleep(3.0)
        made = service.sync.requests_made
        assert not service.status().online
        plan.enabled = False
        assert wait_until(lambda: service.outbox.depth() == 0, timeout=10)
    finally:
        service.sync.stop()
        proxy.stop()
        service.stop()
    report("retry-after", seconds=3, batch_requests_while_429=made)
    assert 2 <= made <= 5  # ~1 per Retry-After second, not one per 50 ms


def test_state_flips_offline_and_online_within_seconds(hub_process, kiosk_config):
    service = kiosk_through(hub_process.url, hub_process.url, kiosk_config)
    service.sync.start()
    try:
        assert wait_until(lambda: service.status().online, timeout=5)
        hub_process.kill()
        t = time.monotonic()
        assert wait_until(lambda: not service.status().online, timeout=6)
        went_offline = time.monotonic() - t
        hub_process.start()
        t = time.monotonic()
        assert wait_until(lambda: service.status().online, timeout=8)
        came_back = time.monotonic() - t
    finally:
        service.stop()
    report("online state", offline_after_s=round(went_offline, 2), online_after_s=round(came_back, 2))
