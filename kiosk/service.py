"""KioskService: the only object the UI talks to. Verbs in, frozen dataclasses out.

    service = build_service(config, dispatch=Clock-based-callable)
    service.subscribe(on_result)       # TapSeen, ShopperResult, ProductResult, ErrorResult, ...
    service.start()                    # reader + sync threads
    service.end_session()

Threads: the reader calls `on_tag` (never blocks: it queues the read and sends `TapSeen`);
a tap worker runs `handle_tag` (hub call with a short timeout, cache, outbox); results reach
listeners through the injected `dispatch` (Kivy's Clock in the app, a direct call in tests
and the CLI). Events are durable in the outbox before any result says "done".
"""
from __future__ import annotations

import logging
import queue
import secrets
import shutil
import threading
import uuid
from dataclasses import replace
from typing import Callable

from drivers.base import ReaderState, ReaderStatus, TagRead
from kiosk import __version__, api, catalog
from kiosk import errors as E
from kiosk.identity import ProductTap, ShopperTap, Unreadable, classify
from kiosk.results import (BadgeResult, ErrorResult, KioskStatus, ProductResult, SessionEnded, ShopperResult,
                           TapResult, TapSeen)
from kiosk.images import ImageStore
from kiosk.results import ReaderTestRead, StaffResult
from kiosk.service_staff import StaffDesk
from kiosk.session import Session, apply_pending

log = logging.getLogger(__name__)
_STOP = object()


class KioskService(StaffDesk):
    def __init__(self, config, identity, hub, outbox, cache, sync, reader=None,
                 dispatch: Callable[[Callable[[], None]], None] | None = None, hub_url: str = "",
                 cache_key: bytes = b"") -> None:
        self.config, self.identity, self.hub = config, identity, hub
        self.outbox, self.cache, self.sync, self.reader = outbox, cache, sync, reader
        self.hub_url = hub_url
        self.dispatch = dispatch or (lambda fn: fn())
        # this kiosk's own key for finding cached views (kiosk.provisioning.cache_key); without
        # one, a random key: nothing cached is ever found
        self.cache_key = cache_key or secrets.token_bytes(32)
        self._listeners: list[Callable[[object], None]] = []
        self._session: Session | None = None
        self._lock = threading.RLock()
        self._taps: queue.Queue = queue.Queue(maxsize=16)
        self._worker: threading.Thread | None = None
        self._reader_status = ReaderStatus(ReaderState.STOPPED, reader.spec if reader else "none")
        self.sync.on_change = lambda status: self._publish(status)
        self.sync.on_revoked = self._revoked
        self.sync.on_refused = self._token_refused
        # touch UI (docs/ui.md): staff/technician state, product images, the reader test
        self._staff: StaffResult | None = None
        self._reader_test: Callable[[ReaderTestRead], None] | None = None
        self.images = ImageStore(cache, hub, config.images_dir)

    # -- lifecycle ---------------------------------------------------------------
    def subscribe(self, listener: Callable[[object], None]) -> None:
        self._listeners.append(listener)

    def start(self) -> None:
        self._worker = threading.Thread(target=self._tap_loop, name="tap-worker", daemon=True)
        self._worker.start()
        self.sync.start()
        if self.reader:
            self.reader.start(on_read=self.on_tag, on_state=self._on_reader_state)

    def prime(self) -> None:
        """Pull inventory and offers once if this kiosk never has (used before headless taps)."""
        if not self.cache.get_meta("inventory_cursor"):
            try:
                self.sync.pull()
            except E.KioskError as exc:
                log.info("could not pull the catalogue yet: %s", exc)

    def stop(self) -> None:
        if self.reader:
            self.reader.stop()
        self.sync.stop()
        if self._worker:
            self._taps.put(_STOP)
            self._worker.join(5)
            self._worker = None
        self.end_session("stop", publish=False)
        self.hub.close()
        self.outbox.close()
        self.cache.close()

    # -- taps --------------------------------------------------------------------
    def on_tag(self, read: TagRead) -> None:
        """Reader thread entry point: acknowledge at once, work elsewhere. During a
        technician's reader test, reads are described and shown, never treated as taps."""
        if self._reader_test is not None:
            self._show_reader_test(read)
            return
        self._publish(TapSeen(read.technology))
        try:
            self._taps.put_nowait(read)
        except queue.Full:
            log.warning("tap queue full; a tap was dropped before any processing")

    def _tap_loop(self) -> None:
        try:
            self.images.warm()  # here, not on the UI thread: the screens look images up in memory
        except Exception:
            log.warning("could not list the cached product images", exc_info=True)
        while True:
            read = self._taps.get()
            if read is _STOP:
                return
            try:
                self._publish(self.handle_tag(read))
            except Exception:  # never let one tap kill the worker
                log.exception("tap handling failed")
                self._publish(ErrorResult("unreadable", "internal error"))

    def handle_tag(self, read: TagRead) -> TapResult:
        """Synchronous: classify, resolve, record, and return what to show."""
        tap = classify(read, self.config.id_host)
        if isinstance(tap, Unreadable):
            return ErrorResult("hold_still" if tap.retry else "unreadable", tap.reason, retry=tap.retry)
        if isinstance(tap, ProductTap):
            return self._product(tap)
        return self._shopper(tap)

    def _shopper(self, tap: ShopperTap) -> TapResult:
        cred = tap.credential
        key = cred.keyed_hash(self.cache_key) if cred.stable_id else ""
        one_time = cred.needs_hub_verification  # a SUN message or a phone's answer: only the hub can verify it
        cached = None
        if key and not one_time and not self.sync.device_refused:
            cached = self.cache.get_shopper(key, self.config.cache_ttl_s)
            if cached and cached[0].role == "shopper":
                self._publish(ShopperResult(self._overlay(self._cached_view(cached)), provisional=True))
        result = self._checkin(cred, key, cached)
        if isinstance(result, ErrorResult) and cached and cached[0].role == "shopper":
            # the cached view shown while the hub was asked must not stay up (card revoked, kiosk refused)
            self.end_session(result.code)
        return result

    def _checkin(self, cred, key: str, cached) -> TapResult:
        checkin_id = str(uuid.uuid4())  # the hub records the visit under it; the visit's events point at it
        try:
            view = self.hub.checkin(cred.to_wire(), timeout=self.config.hub_timeout_s, checkin_id=checkin_id)
            self.sync.note_online(True)
            self.sync.note_authenticated()
        except E.UnknownCredential:
            if key:  # revoked or erased on the hub: forget what this kiosk cached for it
                self.cache.purge_shopper_key(key)
            return ErrorResult("unknown_card", "credential not registered")
        except E.CredentialRefused as exc:
            return ErrorResult("refused", exc.detail)
        except E.Unauthorized as exc:
            self.sync.note_refused(exc)
            return self._refused_result()
        except (E.HubUnavailable, E.HubProtocolError, E.Forbidden) as exc:
            self.sync.note_online(False, str(exc))
            if self.sync.device_refused:  # the hub refused this kiosk: no profile, not even offline
                return self._refused_result()
            return self._offline_checkin(cred, key, cached)
        except E.HubError as exc:
            return ErrorResult("unreadable", exc.detail)
        if view.role in ("staff", "technician"):
            return BadgeResult(view.role, view.shopper_id, view.display_name)
        if key:
            try:
                self.cache.put_shopper(key, view)
            except E.StorageError:
                log.warning("could not cache a shopper view", exc_info=True)
        ref = {"checkin": checkin_id, "session": view.session, "shopper_id": view.shopper_id}
        if not view.session:
            del ref["session"]
        return self._begin(view, ref, key, event_id=checkin_id)

    def _refused_result(self) -> ErrorResult:
        """A removed kiosk (revoked) asks the hub nothing; a refused token is tried again later."""
        return ErrorResult("device_revoked" if self.sync.device_revoked else "device_refused",
                           self.sync.device_refused)

    def _cached_view(self, cached) -> api.ShopperView:
        """A cached view as shown offline: other brands' items only under sharing the hub
        confirmed (the row is younger than the TTL: `Cache.get_shopper` checks)."""
        view = replace(cached[0], source="cache", age_s=cached[1], verified=True, session="")
        if view.sharing != api.GRANTED:
            view = replace(view, wishlist=tuple(i for i in view.wishlist if i.brand == self.identity.brand_id))
        return view

    def _offline_checkin(self, cred, key: str, cached) -> TapResult:
        """The hub cannot be asked: queue the check-in with its credential (verified by the hub
        on sync; the visit's events point at this check-in, so they are applied only if the hub
        accepts it, parked if not). A card token or UID may show its cached view; a SUN card or
        a phone is a guest: an unverified one-time proof never opens a cached profile."""
        if not cred.stable_id and not cred.needs_hub_verification:
            return ErrorResult("unreadable", "no stable identity on this card")
        body: dict = {"credential": cred.to_wire()}
        view = None
        if cached and not cred.needs_hub_verification:
            if cached[0].role != "shopper":
                return ErrorResult("refused", "staff badges need the hub")
            view = self._cached_view(cached)
            body["shopper_id"] = view.shopper_id
        warning, event_id = "", ""
        try:
            event_id = self.outbox.append(api.CHECKIN, body)["event_id"]
            self.sync.wake()
        except E.StorageError as exc:
            log.error("check-in not recorded: %s", exc)
            warning = "storage"
        ref = {"checkin": event_id} if event_id else {}
        if view is not None:
            return self._begin(view, ref | {"shopper_id": view.shopper_id}, key, event_id=event_id, warning=warning)
        guest = api.ShopperView(shopper_id="", display_name="", source="cache", verified=False)
        return self._begin(guest, ref, key, guest=True, event_id=event_id, warning=warning)

    def _begin(self, view: api.ShopperView, ref: dict, key: str, guest: bool = False, event_id: str = "",
               warning: str = "") -> ShopperResult:
        view = self._overlay(view, ref)
        with self._lock:
            self._session = Session(ref=ref, key=key, view=view, guest=guest)
        return ShopperResult(view, guest=guest, warning=warning, event_id=event_id)

    def _revoked(self, named: dict[str, str]) -> None:
        """Sync thread: the hub named shoppers this kiosk must forget (their cached views are
        already purged). A consent revoked takes the other brands' items off the screen at once;
        an erased shopper or a revoked card ends the visit."""
        with self._lock:
            session = self._session
            kind = named.get(session.view.shopper_id) if session and session.view.shopper_id else None
            if kind == api.REVOKED_CONSENT:
                own = tuple(i for i in session.view.wishlist if i.brand == self.identity.brand_id)
                session.view = replace(session.view, wishlist=own, sharing=api.REFUSED)
                view = session.view
        if kind is None:
            return
        if kind == api.REVOKED_CONSENT:
            self._publish(ShopperResult(view, guest=session.guest))
        else:
            self.end_session("revoked")

    def _token_refused(self) -> None:
        """Sync thread or tap worker: the hub refused this kiosk's token; no profile stays on screen."""
        with self._lock:
            showing = self._session is not None and not self._session.guest
        if showing:
            self.end_session("refused")

    def _overlay(self, view: api.ShopperView, ref: dict | None = None) -> api.ShopperView:
        """The view as the screen shows it: this kiosk's queued events applied, and only the
        offers valid now (a cached view's refreshed from the offers feed pulled since)."""
        view = self._live_offers(view)
        if not view.shopper_id and not ref:
            return view
        pending = self.outbox.pending_for("shopper_id", view.shopper_id) if view.shopper_id else []
        return apply_pending(view, pending, self.cache.inventory)

    def _live_offers(self, view: api.ShopperView) -> api.ShopperView:
        zone = self.identity.config.get("timezone") if isinstance(self.identity.config, dict) else None
        return catalog.shown_offers(view, self.cache, zone if isinstance(zone, str) else None)

    def _scan(self, gtin: str, session: Session | None) -> None:
        """Every product tap is a `scan` event, whatever it then means: in a visit with the visit's
        proof (the hub keeps it with the shopper's scans), outside one anonymous."""
        try:
            self.outbox.append(api.SCAN, {**(session.ref if session else {}), "gtin": gtin})
            self.sync.wake()
        except E.StorageError:
            log.warning("a product scan was not recorded", exc_info=True)

    def _product(self, tap: ProductTap) -> TapResult:
        stock = self.cache.inventory(tap.gtin) or {}
        with self._lock:
            session = self._session
        self._scan(tap.gtin, session)
        if session is None:
            return ProductResult(tap.gtin, stock.get("title", ""), saved=False,
                                 available_here=stock.get("quantity", 0), location=stock.get("location", ""),
                                 **catalog.product_texts(stock))
        existing = next((i for i in session.view.wishlist if i.gtin == tap.gtin), None)
        if existing:  # saved already: the scan is all this tap records
            return ProductResult(tap.gtin, existing.title, saved=True, already_saved=True,
                                 available_here=existing.available_here, location=existing.location, view=session.view,
                                 texts=existing.texts or tuple(stock.get("texts", ())),
                                 description=existing.description, availability=stock.get("availability", ""))
        try:
            event = self.outbox.append(api.WISHLIST_ADD, {**session.ref, "gtin": tap.gtin})
        except E.StorageError as exc:
            return ErrorResult("storage", str(exc))
        self.sync.wake()
        with self._lock:
            if self._session is not session:  # the shopper left while we wrote
                return ProductResult(tap.gtin, stock.get("title", ""), saved=True, **catalog.product_texts(stock))
            session.view = apply_pending(session.view, [event], self.cache.inventory)
            view = session.view
        item = next(i for i in view.wishlist if i.gtin == tap.gtin)
        return ProductResult(tap.gtin, item.title, saved=True, available_here=item.available_here,
                             location=item.location, view=view, undo_token=event["event_id"],
                             texts=item.texts or tuple(stock.get("texts", ())), description=item.description,
                             availability=stock.get("availability", ""))

    def undo(self, undo_token: str) -> ShopperResult | ErrorResult:
        """Take back a wishlist add made in this session (observed-remove of that add's tag)."""
        with self._lock:
            session = self._session
        if session is None:
            return ErrorResult("no_session")
        item = next((i for i in session.view.wishlist if undo_token in i.tags), None)
        if item is None:
            return ErrorResult("no_session", "nothing to undo")
        return self._remove(session, item)

    def remove_item(self, gtin: str) -> ShopperResult | ErrorResult:
        with self._lock:
            session = self._session
        item = session and next((i for i in session.view.wishlist if i.gtin == gtin), None)
        if not item:
            return ErrorResult("no_session", "no such item")
        return self._remove(session, item)

    def _remove(self, session: Session, item: api.WishlistItem) -> ShopperResult | ErrorResult:
        try:
            event = self.outbox.append(api.WISHLIST_REMOVE, {**session.ref, "gtin": item.gtin, "tags": list(item.tags)})
        except E.StorageError as exc:
            return ErrorResult("storage", str(exc))
        self.sync.wake()
        with self._lock:
            session.view = apply_pending(session.view, [event], self.cache.inventory)
            return ShopperResult(session.view, guest=session.guest)

    def set_sharing(self, grant: bool) -> ShopperResult | ErrorResult:
        """The shopper's answer to "show items saved at other brands here?"."""
        with self._lock:
            session = self._session
        if session is None or session.guest:
            return ErrorResult("no_session")
        try:
            self.outbox.append(api.CONSENT_GRANT if grant else api.CONSENT_REVOKE, {**session.ref, "from_brand": "*"})
        except E.StorageError as exc:
            return ErrorResult("storage", str(exc))
        self.sync.wake()
        view = session.view
        if session.view.session:
            try:  # the event reaches the hub first, then the hub's view reflects the answer
                self.sync.drain(max_batches=1, honour_backoff=False)
                fresh = self.hub.session_view(session.view.session, timeout=self.config.hub_timeout_s)
                if session.key:  # the hub's own view, confirmed now: never one with pending items on it
                    self.cache.put_shopper(session.key, fresh)
                view = self._overlay(fresh)
            except E.KioskError as exc:
                log.info("sharing answer queued; the hub's refreshed view is not available (%s)", type(exc).__name__)
        view = replace(view, sharing=api.GRANTED if grant else api.REFUSED)
        if not grant:
            view = replace(view, wishlist=tuple(i for i in view.wishlist if i.brand == self.identity.brand_id))
            if session.key:
                self.cache.purge_shopper_key(session.key)
        with self._lock:
            session.view = view
        return ShopperResult(view)

    def end_session(self, reason: str = "done", publish: bool = True) -> None:
        with self._lock:
            self._session = None
        if publish:
            self._publish(SessionEnded(reason))

    @property
    def session_view(self) -> api.ShopperView | None:
        with self._lock:
            return self._session.view if self._session else None

    # -- sync and status ---------------------------------------------------------
    def sync_now(self) -> dict:
        """Both ways, now: the outbox drained, then inventory, offers and revocations pulled
        (what the sync worker does every pull interval); a pull that fails waits for the worker."""
        sent = self.sync.drain(honour_backoff=False)
        try:
            self.sync.pull()
        except E.KioskError as exc:
            log.info("could not pull the catalogue: %s", exc)
        return sent

    def status(self) -> KioskStatus:
        s = self.sync.status()
        free = shutil.disk_usage(self.config.data_dir).free
        return KioskStatus(
            online=s.online, reader_state=self._reader_status.state.value, reader_detail=self._reader_status.detail,
            outbox_depth=s.depth, parked=s.parked, parked_events=tuple(self.outbox.parked()), last_sync=s.last_sync,
            last_error=s.last_error, hub_latency_ms=self.hub.last_latency_ms, free_disk_bytes=free,
            low_disk=free < self.config.low_disk_bytes, version=__version__, device_id=self.identity.device_id,
            store_id=self.identity.store_id, hub_url=self.hub_url, cache_rebuilt=self.cache.rebuilt_from is not None,
            device_refused=s.device_refused, device_revoked=s.device_revoked)

    @property
    def reader_status(self) -> ReaderStatus:
        return self._reader_status

    def _on_reader_state(self, status: ReaderStatus) -> None:
        self._reader_status = status
        self._publish(status)

    def _publish(self, item: object) -> None:
        for listener in list(self._listeners):
            self.dispatch(lambda listener=listener: listener(item))
