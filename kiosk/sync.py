"""The sync worker: drains the outbox to the hub, pulls inventory, offers and revocations,
reports health.

At-least-once from here + idempotent receipt on the hub = exactly once (DESIGN section 7).
Batches go oldest first; per-event outcomes come back; created and duplicate events leave
the outbox in one transaction, rejected ones are parked and never block the rest. After a
failure the next attempt time is persisted in the outbox (exponential backoff with full
jitter, at least the hub's `Retry-After`), so a long outage or a restart never makes a hot
loop and no thread sleeps inside a request.

Revocations (consent revoked, credential revoked, shopper erased anywhere) are pulled with
the inventory and every `revocations_interval_s`: each cached view of a shopper named is
purged before the cursor moves. Expired cache rows are purged on every round. A refused
device token (401) is remembered in the outbox's meta until an authenticated call succeeds
(or the kiosk is re-enrolled: the state names the device id it was refused for); meanwhile
the kiosk shows no profile and its cached views are gone. A kiosk its brand removed from the
fleet (401 device-revoked) is refused for good: it keeps its outbox and asks that hub nothing
more (no sync, pull or heartbeat; its hub client refuses every call but the health probe)
until it is enrolled again, when the new identity starts with its backoff cleared and
delivers the queue.

    worker = SyncWorker(outbox, cache, hub, config, identity)
    worker.start(); worker.wake(); worker.stop()
"""
from __future__ import annotations

import json
import logging
import random
import shutil
import threading
import time
from dataclasses import dataclass
from typing import Callable

from kiosk import __version__, api
from kiosk import errors as E

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 3.0
NEVER = float("-inf")  # a monotonic time before any other
REFUSED_META = "device_refused"
MAX_REVOCATION_PAGES = 20


@dataclass(frozen=True)
class SyncStatus:
    online: bool
    last_sync: float  # epoch seconds of the last batch the hub acknowledged, 0 if never
    last_error: str
    depth: int
    parked: int
    next_attempt_in: float
    device_refused: str = ""  # why the hub refused this kiosk's token ("" when it has not)
    device_revoked: bool = False  # removed from the brand's fleet: nothing is sent until it is enrolled again


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
        self._last_revocations = NEVER
        self._no_feed_logged = False
        self.on_change: Callable[[SyncStatus], None] = lambda status: None
        self.on_revoked: Callable[[dict[str, str]], None] = lambda named: None  # shopper_id -> kind
        self.on_refused: Callable[[], None] = lambda: None
        self._revoked = False
        self._refused = self._load_refused()
        if self._revoked:
            self.hub.revoked = self._refused
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
                          self.outbox.depth(), self.outbox.parked_count(), max(0.0, next_at - time.time()),
                          self._refused, self._revoked)

    # -- a refused device token ----------------------------------------------------
    def _load_refused(self) -> str:
        try:
            data = json.loads(self.outbox.get_meta(REFUSED_META) or "{}")
        except ValueError:
            return ""
        if not isinstance(data, dict) or not data:
            return ""
        if data.get("device_id") != self.identity.device_id:
            self._reenrolled()  # a new identity starts trusted, and tries at once
            return ""
        self._revoked = bool(data.get("revoked"))
        return str(data.get("detail") or "the hub refused this kiosk's device token")

    def _reenrolled(self) -> None:
        """Enrolled again since the old identity was refused: forget that state and the backoff
        the refusals built up, so the queued events go out with the new token now."""
        try:
            for key, value in ((REFUSED_META, ""), ("attempts", "0"), ("next_attempt_at", "0")):
                self.outbox.set_meta(key, value)
        except E.StorageError:
            log.warning("could not clear the old identity's refused state", exc_info=True)
        log.info("enrolled again since the hub refused the old identity: queued events go out with the new one")

    @property
    def device_refused(self) -> str:
        """Why the hub refused this kiosk's token, or "" (persisted: a restart remembers)."""
        return self._refused

    @property
    def device_revoked(self) -> bool:
        """Removed from the brand's fleet: nothing goes to the hub until the kiosk is enrolled again."""
        return self._revoked

    def note_refused(self, detail: "str | E.KioskError") -> None:
        """The hub answered 401: show no profile, forget every cached view, tell the technician.
        Given the `DeviceRevoked` error itself, the kiosk also stops calling the hub."""
        revoked = isinstance(detail, E.DeviceRevoked)
        if isinstance(detail, E.KioskError):
            detail = detail.detail
        first = not self._refused or (revoked and not self._revoked)
        self._refused = (detail or "the hub refused this kiosk's device token")[:300]
        self._revoked = self._revoked or revoked
        if self._revoked:
            self.hub.revoked = self._refused  # the client refuses every further call itself
        try:
            self.outbox.set_meta(REFUSED_META, json.dumps({"device_id": self.identity.device_id,
                                                           "detail": self._refused, "revoked": self._revoked,
                                                           "at": time.time()}))
        except E.StorageError:
            log.warning("could not record the refused device token", exc_info=True)
        try:
            self.cache.purge_all_shoppers()
        except E.StorageError:
            log.error("could not purge the cached shopper views", exc_info=True)
        if first and self._revoked:
            log.error("this kiosk was removed from the fleet: it keeps its %d queued event(s) and calls the hub no "
                      "more; enroll it again (technician screen or `kiosk enroll`)", self._depth())
        elif first:
            log.error("the hub refused this kiosk's device token: no profile is shown until it accepts it "
                      "again; re-enroll the kiosk (technician screen or `kiosk enroll`)")
            for listener in (self.on_refused, lambda: self.on_change(self.status())):
                try:
                    listener()
                except Exception:
                    log.exception("refused-token listener failed")

    def _depth(self) -> int:
        try:
            return self.outbox.depth()
        except E.StorageError:
            return -1

    def note_authenticated(self) -> None:
        """An authenticated call succeeded: the token is good (again)."""
        if not self._refused or self._revoked:
            return
        self._refused = ""
        try:
            self.outbox.set_meta(REFUSED_META, "")
        except E.StorageError:
            log.warning("could not clear the refused device token state", exc_info=True)
        log.info("the hub accepts this kiosk's device token again")
        try:
            self.on_change(self.status())
        except Exception:
            log.exception("sync status listener failed")

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
        while (max_batches is None or sent["batches"] < max_batches) and not self._revoked:
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
                self.note_refused(exc)
                if not self._revoked:  # a revoked kiosk does not retry at all: no backoff to keep
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
            self.note_authenticated()
            self._succeeded()
        return sent

    def pull(self) -> None:
        """Inventory, offers and revocations deltas since the last cursors."""
        try:
            inv = self.hub.inventory(self.identity.store_id, self.cache.get_meta("inventory_cursor"),
                                     timeout=self.config.sync_timeout_s)
            self.note_authenticated()
            self.cache.apply_inventory(inv["inventory"], inv["cursor"])
            offers = self.hub.offers(self.cache.get_meta("offers_cursor"), timeout=self.config.sync_timeout_s)
            self.cache.apply_offers(offers["offers"], offers["cursor"])
            self.pull_revocations()
        except E.Unauthorized as exc:
            self.note_refused(exc)
            raise
        self._last_pull = time.monotonic()

    def pull_revocations(self) -> dict[str, str]:
        """Purge every cached view of each shopper the hub says this kiosk must forget; the
        cursor moves only after the purge. Returns the shoppers named (id -> kind)."""
        named: dict[str, str] = {}
        cursor = self.cache.get_meta("revocations_cursor")
        for _ in range(MAX_REVOCATION_PAGES):
            try:
                data = self.hub.revocations(cursor, timeout=self.config.sync_timeout_s)
            except E.NotFound:
                if not self._no_feed_logged:
                    log.warning("the hub has no revocation feed (an older hub): cached views expire by TTL only")
                    self._no_feed_logged = True
                break
            page = {r["shopper_id"]: str(r.get("kind", "")) for r in data["revocations"]}
            if page:
                self.cache.purge_shoppers(list(page))
                named.update(page)
            moved = data["cursor"] != cursor
            cursor = data["cursor"]
            self.cache.set_meta("revocations_cursor", cursor)
            if not page or not moved:
                break
        self._last_revocations = time.monotonic()
        if named:
            log.info("forgot the cached views of %d shopper(s) revoked at the hub", len(named))
            try:
                self.on_revoked(named)
            except Exception:
                log.exception("revocation listener failed")
        return named

    def heartbeat(self) -> None:
        status = self.status()
        payload = {"version": __version__, "outbox_depth": status.depth, "parked": status.parked,
                   "last_sync": status.last_sync, "sent_at": time.time(), "free_disk_mb": self._free_disk_mb(),
                   **self.heartbeat_extra()}
        try:
            self.hub.heartbeat(self.identity.device_id, payload, timeout=self.config.sync_timeout_s)
        except E.Unauthorized as exc:
            self.note_refused(exc)
            raise
        self.note_authenticated()
        self._last_heartbeat = time.monotonic()

    def _free_disk_mb(self) -> int | None:
        try:
            return shutil.disk_usage(self.config.data_dir).free // 2**20
        except OSError:
            return None

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
        try:
            self.cache.purge_expired(self.config.cache_ttl_s)
        except E.StorageError:
            log.warning("could not purge expired cache rows", exc_info=True)
        if self._revoked or self._backing_off():
            return  # a kiosk removed from the fleet asks the hub nothing until it is enrolled again
        self.drain()
        if self._backing_off():
            return
        now = time.monotonic()
        try:
            if self.online and now - self._last_pull > self.config.pull_interval_s:
                self.pull()
            elif self.online and now - self._last_revocations > self.config.revocations_interval_s:
                try:
                    self.pull_revocations()
                except E.Unauthorized as exc:
                    self.note_refused(exc)
                    raise
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

