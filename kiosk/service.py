"""KioskService: the only object the UI talks to. Verbs in, frozen dataclasses out.

    service = open_service(config, dispatch=clock_callable)   # kiosk/app.py; enrolled or not
    service.subscribe(on_result)       # TapSeen, ShopperResult, ProductResult, ReaderChanged, ...
    service.start()                    # reader, tap worker and sync threads
    service.reset()                    # back to attract, nothing of the last person kept

The service owns the kiosk's mode (kiosk.results.Mode) and decides what a tap means in it:
in attract and shopper mode a card opens a visit and a product tap is scanned (and saved in a
visit); during PIN entry and in technician mode a tap records nothing; in the reader test it
is only described; in staff mode a shopper's tap is a staff lookup and a product's shows its
stock. The shopper side lives in kiosk/visits.py, the staff and technician side in
kiosk/desk.py; both are objects this service holds.

Threads: the reader calls `on_tag` (never blocks: it queues the read and sends `TapSeen`);
a tap worker runs `handle_tag` (hub call with a short timeout, cache, outbox); results reach
listeners through the injected `dispatch` (Kivy's Clock in the app, a direct call in tests
and the CLI). Events are durable in the outbox before any result says "done".

Before enrollment the service has no parts (`enrolled` is False): taps answer
`not_enrolled`, the technician PIN and settings work, and `reenroll` builds the parts.
"""
from __future__ import annotations

import logging
import queue
import shutil
import threading
from typing import Callable

from drivers.base import ReaderState, ReaderStatus, TagRead
from kiosk import __version__
from kiosk import errors as E
from kiosk.desk import StaffDesk, enroll_device
from kiosk.identity import ProductTap, Unreadable, classify
from kiosk.results import (BadgeResult, ErrorResult, KioskStatus, Mode, OnlineChanged, ProvisionResult, ReaderChanged,
                           SessionEnded, ShopperResult, TapIgnored, TapResult, TapSeen)
from kiosk.visits import Visits, stock_result

log = logging.getLogger(__name__)
_STOP = object()
QUIET = (Mode.PIN, Mode.TECHNICIAN, Mode.READER_TEST)  # a tap records nothing here


class KioskService:
    def __init__(self, config, core=None, reader=None, dispatch: Callable[[Callable[[], None]], None] | None = None,
                 build_core: Callable | None = None, open_reader: Callable | None = None) -> None:
        """`core`: the enrolled kiosk's parts (kiosk.app.Core) or None before enrollment;
        `build_core(config)` and `open_reader(config, core)` make new ones on `reenroll`."""
        self.config = core.config if core is not None else config
        self.core = core
        self.reader = reader
        self.dispatch = dispatch or (lambda fn: fn())
        self._build_core, self._open_reader = build_core, open_reader
        self._listeners: list[Callable[[object], None]] = []
        self.lock = threading.RLock()  # the mode and the visit's session change together under it
        self._mode = Mode.ATTRACT
        self.epoch = 0  # bumped whenever a person's turn ends or a new prompt opens: late answers see it
        self._swap = threading.Lock()  # a tap is handled with one set of parts: never across a re-enrollment
        self._taps: queue.Queue = queue.Queue(maxsize=16)
        self._worker: threading.Thread | None = None
        self._reader_status = ReaderStatus(ReaderState.STOPPED, reader.spec if reader else "none")
        self.visits = Visits(self)
        self.desk = StaffDesk(self)
        if core is not None:
            self._attach(core)

    # -- the parts (those of the enrolled kiosk) ------------------------------------
    @property
    def enrolled(self) -> bool:
        return self.core is not None

    def _part(self, name: str):
        if self.core is None:
            raise E.NotEnrolled("this kiosk is not enrolled with a hub")
        return getattr(self.core, name)

    identity = property(lambda self: self._part("identity"))
    hub = property(lambda self: self._part("hub"))
    outbox = property(lambda self: self._part("outbox"))
    cache = property(lambda self: self._part("cache"))
    sync = property(lambda self: self._part("sync"))
    images = property(lambda self: self._part("images"))
    cache_key = property(lambda self: self._part("cache_key"))
    hub_url = property(lambda self: self.core.hub_url if self.core else self.config.hub_url)

    def _attach(self, core) -> None:
        core.sync.on_change = lambda s: self.publish(OnlineChanged(s.online, s.depth))
        core.sync.on_revoked = self.visits.revoked
        core.sync.on_refused = self.visits.token_refused
        core.sync.heartbeat_extra = lambda: {"reader_state": self._reader_status.state.value}

    # -- lifecycle ---------------------------------------------------------------------
    def subscribe(self, listener: Callable[[object], None]) -> None:
        self._listeners.append(listener)

    def start(self) -> None:
        self._worker = threading.Thread(target=self._tap_loop, name="tap-worker", daemon=True)
        self._worker.start()
        if self.core is not None:
            self.core.sync.start()
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
        if self._worker:
            self._taps.put(_STOP)
            self._worker.join(5)
            self._worker = None
        self.reset()
        if self.core is not None:
            self.core.close()

    def reenroll(self, hub_url: str, code: str) -> ProvisionResult:
        """Blocking (the technician screen runs it off the UI thread): enroll again (new hub,
        store or code) and carry on with the new identity, the same reader handed over. Refused
        while events still wait for the current hub, unless the hub refused or removed this
        kiosk and it enrolls with that same hub again: then the new identity delivers them (the
        old token goes along as proof for the events that point at the old device's check-ins)."""
        from kiosk.config import same_url
        if self.core is not None:
            waiting = self.outbox.depth() + self.outbox.parked_count()
            if waiting and not (self.sync.device_refused and same_url(hub_url, self.hub_url)):
                return ProvisionResult(False, "events_waiting", f"{waiting} event(s) wait for {self.hub_url}")
        result = enroll_device(self.config, hub_url, code)
        if not result.ok or self._build_core is None:
            return result
        with self._swap:  # no tap is handled while the parts change hands
            if self.reader:
                self.reader.stop()
            old = self.core
            if old is not None:
                old.sync.stop()  # its worker must not send with the old token once the new one is here
            try:
                core = self._build_core(self.config.replace(hub_url=result.hub_url))
            except (E.KioskError, OSError) as exc:  # enrolled, but its files cannot be opened: say so, keep going
                log.error("re-enrolled, but the kiosk could not open its parts: %s", exc)
                if old is not None:
                    old.sync.start()
                if self.reader:
                    self.reader.start(on_read=self.on_tag, on_state=self._on_reader_state)
                return ProvisionResult(False, "refused", "enrolled, but the kiosk's files could not be opened",
                                       hub_url=result.hub_url)
            self.core, self.config = core, core.config
            if old is not None:
                old.close()
            self._attach(self.core)
            if self.reader is None and self._open_reader is not None:
                self.reader = self._open_reader(self.config, self.core)
            elif self.reader is not None and hasattr(self.reader, "kiosk_id"):
                self.reader.kiosk_id = self.core.identity.device_id  # phones sign the new kiosk id
            self.core.sync.start()
            if self.reader:
                self.reader.start(on_read=self.on_tag, on_state=self._on_reader_state)
        try:
            self.images.warm()  # the new parts' pictures on disk, listed here (a worker thread), not on screen
        except Exception:
            log.warning("could not list the cached product images", exc_info=True)
        log.info("re-enrolled: the kiosk now talks to its new hub")
        return result

    # -- the mode ----------------------------------------------------------------------
    @property
    def mode(self) -> Mode:
        return self._mode

    def enter(self, mode: Mode, allowed_from: tuple = ()) -> bool:
        """Change mode, if the kiosk is in one of `allowed_from` (any, when empty)."""
        with self.lock:
            if allowed_from and self._mode not in allowed_from:
                return False
            self._mode = mode
            return True

    def visit_began(self, epoch: int) -> bool:
        """Called by Visits under the lock: may a visit start now? Not if the person's turn
        ended while the hub was asked (Done on the cached view, idle, a PIN screen, staff
        locking: `epoch` moved on). One started in attract mode makes it shopper mode; in
        staff mode it is the tapped shopper's lookup."""
        if epoch != self.epoch or self._mode not in (Mode.ATTRACT, Mode.SHOPPER, Mode.STAFF):
            return False
        if self._mode == Mode.ATTRACT:
            self._mode = Mode.SHOPPER
        return True

    def ask_pin(self, badge: BadgeResult | None = None) -> bool:
        """The PIN screen: for a badge tapped, or the technician's button (attract mode only).
        A shopper's visit ends here, unpublished: the screen goes to the PIN at once."""
        allowed = (Mode.ATTRACT, Mode.SHOPPER, Mode.STAFF, Mode.PIN) if badge else (Mode.ATTRACT,)
        with self.lock:
            if not self.enter(Mode.PIN, allowed_from=allowed):
                return False
            self.epoch += 1
            self.visits.end()
            self.desk.reset()
            self.desk.badge = badge
        return True

    def open_technician(self) -> bool:
        """A fresh kiosk (not enrolled, no technician PIN yet) opens on Set up: nothing to protect."""
        if self.enrolled or self.config.technician_pin_hash:
            return False
        return self.enter(Mode.TECHNICIAN, allowed_from=(Mode.ATTRACT,))

    def reset(self) -> None:
        """Back to attract with nothing of the last person kept: no visit, no badge waiting, no
        reader test. The staff unlock is forgotten by `desk.lock_staff` (blocking: the hub)."""
        with self.lock:
            self._mode = Mode.ATTRACT
            self.epoch += 1
            self.visits.end()
            self.desk.reset()

    def end_session(self, reason: str = "done", publish: bool = True) -> None:
        """The visit ends (done, idle, revoked, refused): back to attract from shopper mode."""
        with self.lock:
            self.epoch += 1
            self.visits.end()
            if self._mode == Mode.SHOPPER:
                self._mode = Mode.ATTRACT
        if publish:
            self.publish(SessionEnded(reason))

    @property
    def session_view(self):
        session = self.visits.current()
        return session.view if session else None

    # -- taps --------------------------------------------------------------------------
    def on_tag(self, read: TagRead) -> None:
        """Reader thread entry point: acknowledge at once, work elsewhere. During a
        technician's reader test, reads are described and shown, never treated as taps."""
        if self.desk.show_reader_test(read):
            return
        self.publish(TapSeen(read.technology))
        try:
            self._taps.put_nowait(read)
        except queue.Full:
            log.warning("tap queue full; a tap was dropped before any processing")

    def _tap_loop(self) -> None:
        if self.core is not None:
            try:
                self.images.warm()  # here, not on the UI thread: the screens look images up in memory
            except Exception:
                log.warning("could not list the cached product images", exc_info=True)
        while True:
            read = self._taps.get()
            if read is _STOP:
                return
            try:
                self.publish(self.handle_tag(read))
            except Exception:  # never let one tap kill the worker
                log.exception("tap handling failed")
                self.publish(ErrorResult("unreadable", "internal error"))

    def handle_tag(self, read: TagRead) -> TapResult:
        """Synchronous: what this tap means in the kiosk's mode, recorded, and what to show."""
        with self._swap:
            with self.lock:
                mode, epoch = self._mode, self.epoch
            if mode in QUIET:
                return TapIgnored(mode.value)  # nothing is asked or recorded: not even a scan
            if self.core is None:
                return ErrorResult("not_enrolled", "this kiosk is not enrolled with a hub")
            tap = classify(read, self.config.id_host)
            if isinstance(tap, Unreadable):
                return ErrorResult("hold_still" if tap.retry else "unreadable", tap.reason, retry=tap.retry)
            if isinstance(tap, ProductTap):
                if mode == Mode.STAFF:  # staff checking the shelf: not a shopper's scan
                    return stock_result(tap.gtin, self.cache.inventory(tap.gtin) or {})
                return self.visits.product(tap)
            result = self.visits.shopper(tap, epoch, show_cached=mode != Mode.STAFF)
            if isinstance(result, BadgeResult):
                return result if epoch == self.epoch and self.ask_pin(result) else TapIgnored(self._mode.value)
            if mode == Mode.STAFF and isinstance(result, ShopperResult):
                return self.desk.tapped_shopper(result, epoch)
            return result

    def undo(self, undo_token: str):
        return self.visits.undo(undo_token)

    def remove_item(self, gtin: str):
        return self.visits.remove_item(gtin)

    def set_sharing(self, grant: bool):
        return self.visits.set_sharing(grant)

    # -- sync and status -----------------------------------------------------------------
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
        ok = status.state in (ReaderState.CONNECTED, ReaderState.STARTING)
        self.publish(ReaderChanged(ok, status.state.value, status.detail))

    # -- product images (the screens look them up; fetching is blocking) -------------------
    def image_file(self, path: str):
        """A product image already on disk, or None (no network)."""
        try:
            return self.images.local(path) if self.core is not None else None
        except Exception:  # a damaged cache row only costs the picture
            log.warning("image lookup failed", exc_info=True)
            return None

    def fetch_image(self, path: str):
        """Blocking: the image file, downloaded once and kept for offline use; None if there is none."""
        if self.core is None:
            return None
        try:
            return self.images.fetch(path, timeout=max(self.config.hub_timeout_s, 3.0))
        except (E.KioskError, OSError) as exc:
            log.info("product image not fetched (%s)", type(exc).__name__)
            return None

    def publish(self, item: object) -> None:
        for listener in list(self._listeners):
            self.dispatch(lambda listener=listener: listener(item))
