"""The sync worker: drains the outbox to the hub, pulls inventory and offers, reports health.

At-least-once from here + idempotent receipt on the hub = exactly once (DESIGN section 7).
Batches go oldest first; per-event outcomes come back; created and duplicate events leave
the outbox in one transaction, rejected ones are parked and never block the rest. After a
failure the next attempt time is persisted in the outbox (exponential backoff with full
jitter, at least the hub's `Retry-After`), so a long outage or a restart never makes a hot
loop and no thread sleeps inside a request.

    worker = SyncWorker(outbox, cache, hub, config, identity)
    worker.start(); worker.wake(); worker.stop()
"""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable

from kiosk import __version__, api
from kiosk import errors as E

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 3.0
NEVER = float("-inf")  # a monotonic time before any other


@dataclass(frozen=True)
class SyncStatus:
    online: bool
    last_sync: float  # epoch seconds of the last batch the hub acknowledged, 0 if never
    last_error: str
    depth: int
    parked: int
    next_attempt_in: float


class SyncWorker:
    def __init__(self, outbox, cache, hub, config, identity, heartbeat_extra: Callable[[], dict] | None = None,
                 rng: random.Random | None = None) -> None:
        self.outbox, self.cache, self.hub, self.config, self.identity = outbox, cache, hub, config, identity
        self.heartbeat_extra = heartbeat_extra or (lambda: {})
        self.rng = rng or random.Random()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.online = False
        self.last_error = ""
        # time.monotonic() counts from boot, so "never" must be -inf, not 0: a kiosk that starts
        # a minute after power-on would otherwise wait out a whole pull interval for its catalogue.
        self._last_pull = NEVER
        self._last_heartbeat = NEVER
        self._last_probe = NEVER
        self.on_change: Callable[[SyncStatus], None] = lambda status: None
        self.requests_made = 0  # for the chaos tests' retry-rate bound

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sync-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        """Something was queued, or a technician asked: try now (backoff still applies)."""
        self._wake.set()

    # -- state -------------------------------------------------------------------
    def status(self) -> SyncStatus:
        next_at = float(self.outbox.get_meta("next_attempt_at", "0") or 0)
        return SyncStatus(self.online, float(self.outbox.get_meta("last_sync", "0") or 0), self.last_error,
                          self.outbox.depth(), self.outbox.parked_count(), max(0.0, next_at - time.time()))

    def note_online(self, online: bool, error: str = "") -> None:
        """Called by the sync loop and by the service after a check-in call."""
        changed = online != self.online
        was_offline = not self.online
        self.online = online
        self.last_error = "" if online else error
        if online and was_offline:
            self._last_pull = NEVER  # pull deltas right after reconnecting
            self._wake.set()
        if changed:
            log.info("hub is now %s", "online" if online else "offline")
            try:
                self.on_change(self.status())
            except Exception:
                log.exception("sync status listener failed")

    # -- one round (also used directly by `kiosk sync` and the tests) -------------
    def drain(self, max_batches: int | None = None, honour_backoff: bool = True) -> dict:
        """Send pending events until the outbox is empty, the hub fails or `max_batches`."""
        sent = {"created": 0, "duplicate": 0, "rejected": 0, "batches": 0}
        size = self.config.batch_size
        while max_batches is None or sent["batches"] < max_batches:
            if honour_backoff and self._backing_off():
                break
            batch = self.outbox.batch(size)
            if not batch:
                break
            try:
                self.requests_made += 1
                outcomes = self.hub.post_events(batch, timeout=self.config.sync_timeout_s)
            except E.HubUnavailable as exc:
                self._failed(str(exc), exc.retry_after)
                break
            except E.HubProtocolError as exc:
                self._failed(f"hub answered nonsense: {exc}", None)
                break
            except E.Unauthorized as exc:
                self._failed(f"device token refused: {exc}", self.config.backoff_cap_s)
                break
            except E.HubError as exc:  # the whole batch refused (e.g. 413/422): isolate the culprit
                if len(batch) == 1:
                    self.outbox.settle([], {batch[0]["event_id"]: f"refused by the hub: {exc.detail}"})
                    sent["rejected"] += 1
                else:
                    size = max(1, len(batch) // 2)
                continue
            acked = [o.event_id for o in outcomes if o.status in (api.CREATED, api.DUPLICATE)]
            rejected = {o.event_id: o.reason or "rejected" for o in outcomes if o.status == api.REJECTED}
            self.outbox.settle(acked, rejected)
            for o in outcomes:
                sent[o.status] += 1
            sent["batches"] += 1
            self.outbox.set_meta("last_sync", str(time.time()))
            self._succeeded()
        return sent

    def pull(self) -> None:
        """Inventory and offers deltas since the last cursors."""
        inv = self.hub.inventory(self.identity.store_id, self.cache.get_meta("inventory_cursor"),
                                 timeout=self.config.sync_timeout_s)
        self.cache.apply_inventory(inv["inventory"], inv["cursor"])
        offers = self.hub.offers(self.cache.get_meta("offers_cursor"), timeout=self.config.sync_timeout_s)
        self.cache.apply_offers(offers["offers"], offers["cursor"])
        self._last_pull = time.monotonic()

    def heartbeat(self) -> None:
        status = self.status()
        payload = {"version": __version__, "outbox_depth": status.depth, "parked": status.parked,
                   "last_sync": status.last_sync, **self.heartbeat_extra()}
        self.hub.heartbeat(self.identity.device_id, payload, timeout=self.config.sync_timeout_s)
        self._last_heartbeat = time.monotonic()

    # -- internals ---------------------------------------------------------------
    def _backing_off(self) -> bool:
        return time.time() < float(self.outbox.get_meta("next_attempt_at", "0") or 0)

    def _failed(self, error: str, retry_after: float | None) -> None:
        attempts = int(self.outbox.get_meta("attempts", "0") or 0) + 1
        base, cap = self.config.backoff_base_s, self.config.backoff_cap_s
        delay = max(base, self.rng.uniform(0, min(cap, base * 2 ** min(attempts, 16))))  # full jitter
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.config.max_retry_after_s))
        self.outbox.set_meta("attempts", str(attempts))
        self.outbox.set_meta("next_attempt_at", str(time.time() + delay))
        self.note_online(False, error)
        log.info("sync failed (%s); next attempt in %.1fs", error, delay)

    def _succeeded(self) -> None:
        if self.outbox.get_meta("attempts", "0") != "0":
            self.outbox.set_meta("attempts", "0")
            self.outbox.set_meta("next_attempt_at", "0")
        self.note_online(True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._round()
            except E.StorageError as exc:
                log.error("sync round failed on local storage: %s", exc)
            except Exception:  # the worker must outlive any one bad round
                log.exception("sync round failed")
            wait = self.config.sync_interval_s
            next_at = float(self.outbox.get_meta("next_attempt_at", "0") or 0) - time.time()
            if next_at > 0:
                wait = min(max(next_at, 0.05), self.config.max_retry_after_s)
            self._wake.wait(wait)
            self._wake.clear()

    def _round(self) -> None:
        if self._backing_off():
            return
        self.drain()
        if self._backing_off():
            return
        now = time.monotonic()
        try:
            if self.online and now - self._last_pull > self.config.pull_interval_s:
                self.pull()
            if self.online and now - self._last_heartbeat > self.config.heartbeat_interval_s:
                self.heartbeat()
            if now - max(self._last_probe, self._last_pull, self._last_heartbeat) > PROBE_INTERVAL_S:
                self._last_probe = now
                self.hub.health(timeout=self.config.hub_timeout_s)
                if self.outbox.depth() == 0:
                    self.outbox.set_meta("last_sync", str(time.time()))
                self._succeeded()
        except E.HubUnavailable as exc:
            self._failed(str(exc), exc.retry_after)
        except E.HubError as exc:
            self._failed(str(exc), None)

