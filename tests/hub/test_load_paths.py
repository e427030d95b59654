"""What the hub does to stay up under a chain's load, through a real hub on a loopback port over
SQLite and PostgreSQL: bulk batches that keep every event's own outcome and the batch's order,
a body limit counted as the body streams in, and shedding (503 busy) instead of queueing."""
from __future__ import annotations

import sqlite3
import threading
import time
import uuid

import requests
from sqlalchemy import text

from hub import demo
from hub.app import HubSettings
from hub.server import EmbeddedHub
from hub.store import HubStore
from kiosk import api


def enroll(url: str) -> dict:
    r = requests.post(url + "/v1/devices/enroll", json={"code": "DEMO", "name": "t"}, timeout=5)
    return {"Authorization": f"Bearer {r.json()['device_token']}"}


def batch(url: str, auth: dict, events: list[dict], timeout: float = 10):
    return requests.post(url + "/v1/events:batch", headers=auth, json={"events": events}, timeout=timeout)


def statuses(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["status"] for r in response.json()["results"]]


def card(index: int) -> dict:
    return {"kind": "token", "token": demo.token_for(index)}


def new_id() -> str:
    return str(uuid.uuid4())


def checkin_view(url: str, auth: dict, index: int) -> dict:
    r = requests.post(url + "/v1/checkins", headers=auth, json={"credential": card(index)}, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_same_event_twice_in_one_batch_is_one_receipt(hub):
    auth = enroll(hub.url)
    gtin = demo.products()[3]["gtin"]
    add = {"event_id": new_id(), "type": "wishlist_add", "credential": card(0), "gtin": gtin}
    changed = dict(add, gtin=demo.products()[4]["gtin"])
    assert statuses(batch(hub.url, auth, [add, add, changed])) == ["created", "duplicate", "rejected"]
    item = [i for i in checkin_view(hub.url, auth, 0)["wishlist"] if i["gtin"] == gtin]
    assert item and item[0]["tags"] == [add["event_id"]]
    assert not [i for i in checkin_view(hub.url, auth, 0)["wishlist"] if i["gtin"] == changed["gtin"]
                and changed["event_id"] in i["tags"]]


def test_an_event_accepted_once_stays_accepted_when_resent_after_its_card_was_revoked(hub):
    auth = enroll(hub.url)
    add = {"event_id": new_id(), "type": "wishlist_add", "credential": card(1), "gtin": demo.products()[2]["gtin"]}
    later = dict(add, event_id=new_id())
    assert statuses(batch(hub.url, auth, [add])) == ["created"]
    hub.store.conn.execute("UPDATE credentials SET revoked=1 WHERE hash=?",
                           (hub.store.credential_hash(f"token:{demo.token_for(1)}"),))
    answer = batch(hub.url, auth, [add, later]).json()["results"]
    assert [r["status"] for r in answer] == ["duplicate", "rejected"]  # a receipt, and a refusal
    assert "not registered" in answer[1]["reason"]


def test_a_batch_applies_in_its_order_across_bulk_and_one_by_one_events(hub):
    """A consent granted then revoked in one batch ends revoked, also when the revoke points at
    the visit's check-in (applied on its own) and the grant was in the bulk run before it."""
    auth = enroll(hub.url)
    visit = {"event_id": new_id(), "type": "checkin", "credential": card(2)}
    grant = {"event_id": new_id(), "type": "consent_grant", "credential": card(2), "from_brand": "*"}
    revoke = {"event_id": new_id(), "type": "consent_revoke", "checkin": visit["event_id"], "from_brand": "*"}
    assert statuses(batch(hub.url, auth, [visit, grant, revoke])) == ["created"] * 3
    assert checkin_view(hub.url, auth, 2)["consent"]["sharing"] == api.REFUSED
    revoke2 = dict(revoke, event_id=new_id())
    grant2 = dict(grant, event_id=new_id())
    assert statuses(batch(hub.url, auth, [revoke2, grant2])) == ["created"] * 2
    assert checkin_view(hub.url, auth, 2)["consent"]["sharing"] == api.GRANTED


def test_a_body_over_the_limit_is_refused_as_it_streams_in(hub):
    """No Content-Length to trust: chunked transfer, refused once the count passes 4 MiB."""
    auth = enroll(hub.url)

    def chunks():
        yield b'{"events": ['
        for _ in range(5 * 1024):
            yield b" " * 1024
        yield b"]}"
    r = requests.post(hub.url + "/v1/events:batch", headers={**auth, "Content-Type": "application/json"},
                      data=chunks(), timeout=30)
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert "at most" in r.json()["detail"]
    scan = [{"event_id": new_id(), "type": "scan", "gtin": demo.products()[0]["gtin"]}]
    assert statuses(batch(hub.url, enroll(hub.url), scan)) == ["created"]


def test_a_request_is_charged_by_its_body_and_a_chunked_one_as_at_the_limit():
    """The per-kiosk bucket (in process, no clock of its own: times are given)."""
    from hub import ratelimit
    assert ratelimit.cost_of(b"", False, 4 << 20) == 1
    assert ratelimit.cost_of(b"65536", False, 4 << 20) == 3
    assert ratelimit.cost_of(None, True, 4 << 20) == 1 + (4 << 20) / ratelimit.BYTES_PER_TOKEN
    bucket = ratelimit.Buckets(rate=10, burst=40)
    assert bucket.take("k", cost=1000, now=0.0) == 0  # a chunked body takes the whole burst (capped)...
    assert bucket.take("k", cost=1, now=0.0) > 0  # ...so the next request waits
    assert bucket.take("other", cost=1, now=0.0) == 0  # another kiosk does not
    assert bucket.take("k", cost=1, now=0.2) == 0  # 0.2 s later: 2 tokens back


def test_past_its_in_flight_limit_a_hub_sheds_but_still_answers_health(hub_db):
    with EmbeddedHub(HubSettings(db_path=hub_db, max_in_flight=0)) as hub:
        r = requests.post(hub.url + "/v1/devices/enroll", json={"code": "DEMO", "name": "t"}, timeout=5)
        assert r.status_code == 503 and r.json()["type"].endswith("/busy")
        assert r.headers["retry-after"] == "1"
        assert requests.get(hub.url + "/v1/health", timeout=5).status_code == 200
        assert requests.get(hub.url + "/v1/ready", timeout=5).status_code == 200
        assert "hub_requests_shed_total 1" in requests.get(hub.url + "/metrics", timeout=5).text


def test_batches_past_a_busy_lane_are_shed_and_the_held_one_lands_after(hub_db, db_kind):
    """One lane, no queue: while a batch is held at the database, the next batch is answered
    503 busy at once (the kiosk keeps it), and a check-in is still served; then the held batch
    lands whole."""
    with EmbeddedHub(HubSettings(db_path=hub_db, batch_lanes=1, batch_queue=0)) as hub:
        auth = enroll(hub.url)
        held = [{"event_id": new_id(), "type": "scan", "gtin": demo.products()[1]["gtin"]} for _ in range(20)]
        release = hold_the_database(hub_db, db_kind, held[0]["event_id"])
        outcome = {}
        worker = threading.Thread(target=lambda: outcome.update(r=batch(hub.url, auth, held, timeout=30)))
        worker.start()
        try:
            in_lane(hub_db, db_kind)
            shed = batch(hub.url, auth, [{"event_id": new_id(), "type": "scan", "gtin": demo.products()[1]["gtin"]}])
            assert shed.status_code == 503 and shed.json()["type"].endswith("/busy")
            assert shed.headers["retry-after"] == "2"
            if db_kind == "postgresql":  # SQLite's held write lock would hold the session insert too
                assert checkin_view(hub.url, auth, 0)["shopper"]["display_name"]
        finally:
            release()
            worker.join(30)
        assert statuses(outcome["r"]) == ["created"] * 20
        assert "hub_batches_shed_total 1" in requests.get(hub.url + "/metrics", timeout=5).text


def in_lane(db, db_kind: str) -> None:
    """Until the held batch is waiting at the database (PostgreSQL shows its lock wait)."""
    if db_kind == "sqlite":
        time.sleep(0.5)  # nothing to watch from outside: the request is in well before this
        return
    deadline = time.monotonic() + 10
    engine = HubStore.engine_for(db)
    try:
        while True:
            with engine.connect() as conn:
                if conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                     "AND query LIKE 'INSERT INTO events%'")).scalar():
                    return
            assert time.monotonic() < deadline, "the held batch never reached the database"
            time.sleep(0.02)
    finally:
        engine.dispose()


def hold_the_database(db, db_kind: str, event_id: str):
    """Block the hub's next batch at the database: SQLite's write lock, or on PostgreSQL one of
    the batch's event ids inserted in a transaction left open. Returns the release."""
    if db_kind == "sqlite":
        conn = sqlite3.connect(str(db), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")

        def release():
            conn.execute("ROLLBACK")
            conn.close()
        return release
    conn = HubStore.engine_for(db).connect()
    conn.begin()
    conn.execute(text("INSERT INTO events(event_id, device_id, type, body_hash, received_at, body) "
                      "VALUES (:e, 'holder', 'scan', 'x', 0, '{}')"), {"e": event_id})

    def release():
        conn.rollback()
        conn.close()
    return release
