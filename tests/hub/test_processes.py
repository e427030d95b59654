"""What only several hub processes can get wrong, through real processes on one real
PostgreSQL: the same batch or the same one-time credential at two hubs at once, a lock-out
made on one hub seen by the other, a hub killed with -9 mid-batch, the database restarted
under load. And the command's database errors: one line, exit 2, no password."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from drivers import hce
from kiosk import api
from drivers.hce_phone import Phone
from hub import credentials, demo, staff, sun
from hub.server import free_port
from hub.store import HubStore

ROOT = Path(__file__).resolve().parents[2]
META = bytes.fromhex("5f3a1c0e9b7d24681357acebdf024680")
FILE = bytes.fromhex("00112233445566778899aabbccddeeff")
UID = bytes.fromhex("04c0ffee424d02")
CARD_KEY = "3c" * 32  # the hubs' card master key (SUN file keys are sealed under it)
GTINS = [p["gtin"] for p in demo.products()]


def hub_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "hub", *args]


class HubProcess:
    def __init__(self, db: str, workers: int = 1, env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(hub_cmd("--db", db, "--port", str(self.port), "--workers", str(workers)),
                                     cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "KIOSK_HUB_ADMIN_TOKEN": "admin-test", "KIOSK_HUB_CARD_KEY": CARD_KEY,
                                          **(env or {})},
                                     start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(self.url + "/v1/ready", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"hub did not start: {self.proc.stderr.read()[-2000:]}")
            time.sleep(0.1)

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> str:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.proc.stderr.read()


@pytest.fixture
def pg_demo(pg_cluster, pg_demo_template):
    from tests.hub.conftest import pg_copy
    return pg_copy(pg_cluster, pg_demo_template)


@pytest.fixture
def two_hubs(pg_demo):
    hubs = [HubProcess(pg_demo), HubProcess(pg_demo)]
    yield hubs
    for h in hubs:
        h.stop()


def enroll(url: str) -> tuple[str, dict]:
    r = requests.post(url + "/v1/devices/enroll", json={"code": "DEMO", "name": "t"}, timeout=10).json()
    return r["device_id"], {"Authorization": f"Bearer {r['device_token']}"}


def scans(n: int) -> list[dict]:
    return [{"event_id": str(uuid.uuid4()), "type": "scan", "gtin": GTINS[i % len(GTINS)], "at": time.time()}
            for i in range(n)]


def post_batch(url: str, auth: dict, events: list[dict], timeout: float = 30):
    return requests.post(url + "/v1/events:batch", headers=auth, json={"events": events}, timeout=timeout)


def received(db: str, event_ids) -> int:
    store = HubStore(db, migrate=False)
    try:
        ids = set(event_ids)
        return sum(1 for (e,) in store.all("SELECT event_id FROM events") if e in ids)
    finally:
        store.close()


def test_batches_spread_over_two_hubs_and_the_same_batch_at_both_at_once(two_hubs, pg_demo):
    a, b = two_hubs
    _, auth = enroll(a.url)
    events = scans(600)
    statuses: list[str] = []
    for i, chunk in enumerate(events[k:k + 100] for k in range(0, 400, 100)):  # spread over both
        statuses += [r["status"] for r in post_batch((a, b)[i % 2].url, auth, chunk).json()["results"]]
    twice = events[400:]  # the same batch sent to both hubs at the same moment
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda h: post_batch(h.url, auth, twice), (a, b)))
    assert [r.status_code for r in answers] == [200, 200]
    both = [[r["status"] for r in ans.json()["results"]] for ans in answers]
    assert statuses == ["created"] * 400
    # each event of the raced batch was created by exactly one hub and a duplicate at the other
    assert all(sorted(pair) == ["created", "duplicate"] for pair in zip(*both))
    assert received(pg_demo, (e["event_id"] for e in events)) == 600  # 0 lost, 0 duplicated


def test_the_same_sun_tap_and_the_same_phone_answer_at_two_hubs_exactly_one_wins(two_hubs, pg_demo, monkeypatch):
    a, b = two_hubs
    monkeypatch.setenv("KIOSK_HUB_CARD_KEY", CARD_KEY)
    store = HubStore(pg_demo, migrate=False)
    store.set_setting("sun_meta_read_key", META.hex())
    credentials.register_sun_card(store, "shopper-01", UID, FILE)
    phone = Phone.generate("lan-phone-race")
    credentials.register_phone(store, "shopper-01", phone.credential_id, phone.public_key_bytes())
    store.close()
    device_id, auth = enroll(a.url)

    def race(credential: dict) -> list[int]:
        with ThreadPoolExecutor(2) as pool:
            return sorted(pool.map(lambda h: requests.post(h.url + "/v1/checkins", headers=auth, timeout=10,
                                                           json={"credential": credential}).status_code, (a, b)))

    for counter in (5, 6, 7):
        url = sun.make_sun_url(f"https://{demo.ID_HOST}/c", UID, counter, META, FILE)
        assert race({"kind": "sun", "url": url}) == [200, 403]
    for _ in range(3):
        answer = hce.exchange(phone.process_apdu, kiosk_id=device_id)
        wire = {"kind": "hce", "credential_id": answer.credential_id, "nonce": answer.nonce.hex(),
                "signature": answer.signature.hex(), "kiosk_id": answer.kiosk_id}
        assert race(wire) == [200, 403]


def test_a_pin_lockout_made_on_one_hub_holds_on_the_other(two_hubs):
    a, b = two_hubs
    _, auth = enroll(a.url)

    def badge(h):
        r = requests.post(h.url + "/v1/checkins", headers=auth, timeout=10,
                          json={"credential": {"kind": "uid", "uid": "04a1b2c3d4e501"}})
        return r.json()["shopper"]["id"]

    staff_id = badge(a)
    for i in range(5):  # wrong PINs, alternating hubs: the count is the database's, not a process's
        h = (a, b)[i % 2]
        last = requests.post(h.url + "/v1/staff/sessions", headers=auth, timeout=10,
                             json={"staff_id": staff_id, "pin": "000000"}).json()
    assert last["type"] == staff.P_PIN_LOCKED
    badge(b)
    r = requests.post(b.url + "/v1/staff/sessions", headers=auth, timeout=10,
                      json={"staff_id": staff_id, "pin": demo.DEMO_PIN})
    assert r.status_code == 403 and r.json()["type"] == staff.P_PIN_LOCKED


def test_a_kiosk_revoked_at_one_hub_is_refused_by_the_other_within_a_second(two_hubs):
    a, b = two_hubs
    device_id, auth = enroll(a.url)
    assert requests.get(b.url + "/v1/offers", headers=auth, timeout=10).status_code == 200  # b has it cached now
    r = requests.post(a.url + f"/v1/brand/devices/{device_id}:revoke", timeout=10,
                      headers={"Authorization": f"Bearer {demo.brand_key('lotus')}"})
    assert r.status_code == 204
    assert requests.get(a.url + "/v1/offers", headers=auth, timeout=10).json()["type"] == api.P_DEVICE_REVOKED
    deadline, answer = time.monotonic() + 1.5, None
    while time.monotonic() < deadline:
        answer = requests.get(b.url + "/v1/offers", headers=auth, timeout=10)
        if answer.status_code == 401:
            break
        time.sleep(0.05)
    assert answer.status_code == 401 and answer.json()["type"] == api.P_DEVICE_REVOKED


def test_a_hub_killed_mid_batch_loses_and_duplicates_nothing(pg_demo):
    a, b = HubProcess(pg_demo), HubProcess(pg_demo)
    blocker = HubStore.engine_for(pg_demo).connect()
    try:
        _, auth = enroll(b.url)
        events = scans(500)
        # Hold one of the batch's event ids in an open transaction: hub a's insert of the batch
        # waits on it, half written, until a is killed. So the kill lands mid-batch every time.
        middle = sorted(e["event_id"] for e in events)[250]
        blocker.begin()
        blocker.execute(text("INSERT INTO events(event_id, device_id, type, body_hash, received_at, body) "
                             "VALUES (:e, 'blocker', 'scan', 'x', 0, '{}')"), {"e": middle})
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(post_batch, a.url, auth, events, 30)
            deadline = time.monotonic() + 20
            while not waiting_on_a_lock(pg_demo):
                assert time.monotonic() < deadline, "hub a never reached the held event"
                assert not pending.done(), pending.result().text[:200]
                time.sleep(0.02)
            a.kill9()
            with pytest.raises(requests.RequestException):
                pending.result()
        blocker.rollback()
        # the kiosk sends the batch again, now to the other hub behind the balancer
        results = post_batch(b.url, auth, events).json()["results"]
        assert [r["status"] for r in results] == ["created"] * 500  # nothing of a's half batch stayed
        assert received(pg_demo, (e["event_id"] for e in events)) == 500
    finally:
        blocker.close()
        a.stop(), b.stop()


def waiting_on_a_lock(db: str) -> bool:
    with HubStore.engine_for(db).connect() as conn:
        return bool(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                      "AND query LIKE 'INSERT INTO events%'")).scalar())


def test_postgres_restarted_under_load_ready_says_503_then_everything_drains(pg_cluster, pg_demo):
    a = HubProcess(pg_demo)
    try:
        _, auth = enroll(a.url)
        events = scans(1200)
        assert post_batch(a.url, auth, events[:200]).status_code == 200
        pg_cluster.stop_server()
        try:
            ready = requests.get(a.url + "/v1/ready", timeout=10)
            down = post_batch(a.url, auth, events[200:400], timeout=15)
            assert ready.status_code == 503 and down.status_code == 503
            assert down.headers["content-type"] == "application/problem+json"
            assert "Traceback" not in down.text and down.json()["detail"].startswith("the hub's database")
            assert down.headers["Retry-After"]
        finally:
            pg_cluster.start_server()
        # the hub recovers by itself; what was refused is sent again, as a kiosk's outbox does
        deadline = time.monotonic() + 20
        while requests.get(a.url + "/v1/ready", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "the hub did not recover after PostgreSQL came back"
            time.sleep(0.2)
        for k in range(200, 1200, 200):
            r = post_batch(a.url, auth, events[k:k + 200])
            assert r.status_code == 200
        assert received(pg_demo, (e["event_id"] for e in events)) == 1200
    finally:
        assert "Traceback" not in a.stop()


def test_two_workers_on_one_port_serve_the_same_database(pg_demo):
    h = HubProcess(pg_demo, workers=2)
    try:
        _, auth = enroll(h.url)
        events = scans(400)
        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda k: post_batch(h.url, auth, events[k:k + 100]).status_code, range(0, 400, 100)))
        assert codes == [200] * 4
        assert received(pg_demo, (e["event_id"] for e in events)) == 400
    finally:
        h.stop()


def run(*args, env=None):
    return subprocess.run(hub_cmd(*args), cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_database_errors_at_start_are_one_line_exit_2_and_name_the_fix(pg_cluster, tmp_path):
    gone = run("--db", "postgresql://hub:s3cret@127.0.0.1:1/hub")
    assert gone.returncode == 2 and "Traceback" not in gone.stderr and "s3cret" not in gone.stderr
    assert "cannot open the database postgresql://hub:***@127.0.0.1:1/hub" in gone.stderr
    empty = pg_cluster.create_database("empty_one")
    refused = run("--db", empty)
    assert refused.returncode == 2 and f"kiosk hub migrate --db {empty}" in refused.stderr
    assert run("migrate", "--db", empty).returncode == 0
    h = HubProcess(empty)  # now up to date: it starts; no demo world, so the demo code is unknown
    try:
        assert requests.post(h.url + "/v1/devices/enroll", json={"code": "DEMO"}, timeout=10).status_code == 403
    finally:
        h.stop()
    other = pg_cluster.create_database("empty_two")
    demo_run = subprocess.Popen(hub_cmd("--demo", "--db", other, "--port", str(free_port())), cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        store = None
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                store = HubStore(other, migrate=False)
                if store.get_setting("demo_seeded"):
                    break
            except Exception:  # noqa: BLE001 - not migrated yet
                pass
            finally:
                if store:
                    store.close()
        seeded = HubStore(other, migrate=False)
        try:
            assert seeded.one("SELECT count(*) FROM products")[0] == len(GTINS)
        finally:
            seeded.close()
    finally:
        os.killpg(demo_run.pid, signal.SIGTERM)
        demo_run.wait(10)


def peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def test_a_chunked_flood_is_cut_off_as_it_streams_and_the_hub_memory_stays_flat(tmp_path):
    """200 MiB in chunked transfer (no Content-Length to refuse it by), sent five times with a
    kiosk's token (cut off at 4 MiB with 413, or 429 once past the kiosk's rate) and five times
    with none (401 before a byte of the body is read): the hub's peak memory stays flat."""
    db = tmp_path / "hub.db"
    store = HubStore(db)
    store.add_enrollment_code("FLOOD", "lotus", "lotus-hcm", reusable=True)
    store.close()
    h = HubProcess(str(db))
    try:
        device = requests.post(h.url + "/v1/devices/enroll", json={"code": "FLOOD"}, timeout=5).json()
        before = peak_rss_kib(h.proc.pid)

        def flood():
            yield b'{"events": ['
            for _ in range(200):
                yield b" " * (1024 * 1024)
        for token, expected in [(device["device_token"], (413, 429))] * 5 + [("x" * 43, (401,))] * 5:
            try:
                r = requests.post(h.url + "/v1/events:batch", data=flood(), timeout=60,
                                  headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
                assert r.status_code in expected
            except requests.ConnectionError:
                pass  # the hub answered and closed while the client was still sending
        grown_mib = (peak_rss_kib(h.proc.pid) - before) / 1024
        assert grown_mib < 32, f"hub peak memory grew {grown_mib:.0f} MiB"
        assert requests.get(h.url + "/v1/health", timeout=5).status_code == 200
    finally:
        assert "Traceback" not in h.stop()
