"""The wishlist merge, as a stateful property: adds and removes from the kiosk (through the
real service, outbox and sync) and from another channel (the web, straight to the hub),
partial syncs, kiosk crashes and hub outages, in any interleaving. After everything is
delivered the hub's wishlist equals a reference observed-remove set, and the hub holds
exactly the events the kiosk confirmed."""
import shutil
import tempfile
import uuid
from pathlib import Path

import requests
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from kiosk import api
from kiosk.app import build_service, ensure_enrolled
from kiosk.config import load_config
from hub import demo
from hub.app import HubSettings
from hub.server import EmbeddedHub
from kiosk.results import ProductResult, ShopperResult
from tests.taps import card, product

SHOPPER = 3
SHOPPER_ID = "shopper-03"
PRODUCTS = [0, 1, 2, 3, 40, 41, 80, 120]  # own brand and other brands (shopper 3 shares with every brand)
GTINS = [demo.products()[n]["gtin"] for n in PRODUCTS]
DEMO_DB: Path | None = None
totals = {"examples": 0, "kiosk_taps": 0, "kiosk_events": 0, "web_events": 0, "crashes": 0, "outages": 0}


class WishlistMerge(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="merge-"))
        shutil.copy(DEMO_DB, self.dir / "hub.db")
        self.hub = EmbeddedHub(HubSettings(db_path=self.dir / "hub.db")).start()
        self.port = self.hub.port
        self.config = load_config(self.dir / "none.toml", environ={}, overrides={
            "data_dir": self.dir / "kiosk", "batch_size": 2, "hub_timeout_s": 0.5, "sync_timeout_s": 1})
        ensure_enrolled(self.config, self.hub.url, "DEMO")
        web = requests.post(self.hub.url + "/v1/devices/enroll", json={"code": "DEMO", "name": "web"}, timeout=5)
        self.web_auth = {"Authorization": f"Bearer {web.json()['device_token']}"}
        # the other channel proves whose its events are too: a check-in the hub accepted from it
        checkin_id = str(uuid.uuid4())
        r = requests.post(self.hub.url + "/v1/checkins", headers=self.web_auth, timeout=5, json={
            "credential": {"kind": "token", "token": demo.token_for(SHOPPER)}, "checkin_id": checkin_id})
        assert r.status_code == 200, r.text
        self.web_ref = {"checkin": checkin_id, "shopper_id": SHOPPER_ID}
        # the reference observed-remove set starts from what the hub already holds
        self.adds = dict(self.hub.store.all("SELECT tag, gtin FROM wishlist_adds WHERE shopper_id=?", (SHOPPER_ID,)))
        self.removed: set[str] = set()
        self.confirmed: set[str] = set()
        self.service = None
        self.start_kiosk()
        totals["examples"] += 1

    # -- helpers -----------------------------------------------------------------
    def start_kiosk(self):
        self.service = build_service(self.config, with_reader=False)
        append = self.service.outbox.append

        def confirming_scans(event_type, body):  # a product tap's scan is confirmed once queued
            event = append(event_type, body)
            if event_type == api.SCAN:
                self.confirmed.add(event["event_id"])
            return event
        self.service.outbox.append = confirming_scans
        self.visit()

    def visit(self):
        shown = self.service.handle_tag(card(SHOPPER))
        assert isinstance(shown, ShopperResult)
        if shown.event_id:
            self.confirmed.add(shown.event_id)

    def live(self):
        return self.hub.store.all(
            "SELECT a.tag, a.gtin FROM wishlist_adds a LEFT JOIN wishlist_removes r ON r.tag=a.tag AND r.shopper_id=a.shopper_id "
            "WHERE a.shopper_id=? AND r.tag IS NULL", (SHOPPER_ID,))

    def web_post(self, event):
        r = requests.post(self.hub.url + "/v1/events:batch", headers=self.web_auth, json={"events": [event]}, timeout=5)
        assert r.json()["results"][0]["status"] == "created"
        totals["web_events"] += 1

    # -- the kiosk ---------------------------------------------------------------
    @rule(n=st.sampled_from(PRODUCTS))
    def kiosk_add(self, n):
        result = self.service.handle_tag(product(n)[1])
        totals["kiosk_taps"] += 1
        assert isinstance(result, ProductResult) and result.saved
        if result.undo_token:
            self.adds[result.undo_token] = product(n)[0]
            self.confirmed.add(result.undo_token)
            totals["kiosk_events"] += 1

    @rule(gtin=st.sampled_from(GTINS))
    def kiosk_remove(self, gtin):
        view = self.service.session_view
        item = next((i for i in view.wishlist if i.gtin == gtin), None) if view else None
        if item is None:
            return
        before = set(self.service.outbox.all_event_ids())
        result = self.service.remove_item(gtin)
        assert isinstance(result, ShopperResult)
        (event_id,) = set(self.service.outbox.all_event_ids()) - before
        self.removed |= set(item.tags)  # exactly the add tags the kiosk had seen
        self.confirmed.add(event_id)
        totals["kiosk_events"] += 1

    @rule(batches=st.integers(1, 3))
    def partial_sync(self, batches):
        self.service.sync.drain(max_batches=batches, honour_backoff=False)

    @rule()
    def kiosk_crash(self):
        self.service.stop()  # what was confirmed is in the outbox; memory is gone
        totals["crashes"] += 1
        self.start_kiosk()

    @rule()
    def new_visit(self):
        self.service.end_session()
        self.visit()

    # -- the other channel and the hub --------------------------------------------
    @precondition(lambda self: self.hub is not None)
    @rule(gtin=st.sampled_from(GTINS))
    def web_add(self, gtin):
        event = {"event_id": api.uuid7(), "type": api.WISHLIST_ADD, **self.web_ref, "gtin": gtin}
        self.web_post(event)
        self.adds[event["event_id"]] = gtin

    @precondition(lambda self: self.hub is not None)
    @rule(gtin=st.sampled_from(GTINS))
    def web_remove(self, gtin):
        seen = [tag for tag, g in self.live() if g == gtin]  # what the web app shows right now
        if seen:
            self.web_post({"event_id": str(uuid.uuid4()), "type": api.WISHLIST_REMOVE, **self.web_ref,
                           "gtin": gtin, "tags": seen})
            self.removed |= set(seen)

    @precondition(lambda self: self.hub is not None)
    @rule()
    def hub_down(self):
        self.hub.stop()
        self.hub = None
        totals["outages"] += 1

    @precondition(lambda self: self.hub is None)
    @rule()
    def hub_up(self):
        self.hub = EmbeddedHub(HubSettings(db_path=self.dir / "hub.db"), port=self.port).start()

    @invariant()
    def hub_only_has_confirmed_kiosk_events(self):
        if self.hub is None:
            return
        got = {e for (e,) in self.hub.store.all("SELECT event_id FROM events WHERE device_id=?",
                                                (self.service.identity.device_id,))}
        assert got <= self.confirmed

    def teardown(self):
        try:
            if self.hub is None:
                self.hub_up()
            self.service.sync_now()
            assert self.service.outbox.depth() == 0 and self.service.outbox.parked() == []
            expected = {g for tag, g in self.adds.items() if tag not in self.removed}
            assert {g for _, g in self.live()} == expected
            got = {e for (e,) in self.hub.store.all("SELECT event_id FROM events WHERE device_id=?",
                                                    (self.service.identity.device_id,))}
            assert got == self.confirmed
        finally:
            self.service.stop()
            if self.hub:
                self.hub.stop()
            shutil.rmtree(self.dir, ignore_errors=True)


def test_wishlist_merge_is_an_observed_remove_set(demo_db):
    global DEMO_DB
    DEMO_DB = demo_db
    run_state_machine_as_test(WishlistMerge, settings=settings(
        max_examples=25, stateful_step_count=25, deadline=None, derandomize=True,
        suppress_health_check=list(HealthCheck)))
    print(f"\n[merge] {', '.join(f'{k}={v}' for k, v in totals.items())}, lost=0, duplicates=0")
