"""A shopper's visit: the check-in (online, from the cache, or queued offline), product taps
(every one a scan; in a visit also a wishlist add), undo and remove, the sharing answer, and
the visit's end when the hub says the shopper revoked or erased something.

KioskService holds one `Visits` and asks it only in the modes where a tap means a shopper
(kiosk/service.py decides that). It reads the service's current parts (`kiosk.config`,
`kiosk.hub`, `kiosk.outbox`, ...) through their public names, never private fields; the
session lives here, under the service's lock, so a mode change and a visit's start are one
step. Nothing here logs a shopper's name, a token or a wishlist.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import replace

from kiosk import api, catalog
from kiosk import errors as E
from kiosk.identity import ProductTap, ShopperTap
from kiosk.results import BadgeResult, ErrorResult, ProductResult, ShopperResult, TapIgnored, TapResult
from kiosk.session import Session, apply_pending

log = logging.getLogger(__name__)


class Visits:
    def __init__(self, kiosk) -> None:
        self.kiosk = kiosk  # the KioskService: its parts, lock, publish and mode
        self.session: Session | None = None

    # -- a shopper's card or phone -------------------------------------------------
    def shopper(self, tap: ShopperTap, epoch: int, show_cached: bool = True) -> TapResult:
        """`epoch`: the service's when the tap was taken; the visit opens only if it still is."""
        k = self.kiosk
        cred = tap.credential
        key = cred.keyed_hash(k.cache_key) if cred.stable_id else ""
        one_time = cred.needs_hub_verification  # a SUN message or a phone's answer: only the hub can verify it
        cached = None
        if key and not one_time and not k.sync.device_refused:
            cached = k.cache.get_shopper(key, k.config.cache_ttl_s)
            if show_cached and cached and cached[0].role == "shopper":
                k.publish(ShopperResult(self._overlay(self._cached_view(cached)), provisional=True))
        result = self._checkin(cred, key, cached, epoch)
        if isinstance(result, ErrorResult) and show_cached and cached and cached[0].role == "shopper":
            # the cached view shown while the hub was asked must not stay up (card revoked, kiosk refused)
            k.end_session(result.code)
        return result

    def _checkin(self, cred, key: str, cached, epoch: int) -> TapResult:
        k = self.kiosk
        checkin_id = str(uuid.uuid4())  # the hub records the visit under it; the visit's events point at it
        try:
            view = k.hub.checkin(cred.to_wire(), timeout=k.config.hub_timeout_s, checkin_id=checkin_id)
            k.sync.note_online(True)
            k.sync.note_authenticated()
        except E.UnknownCredential:
            if key:  # revoked or erased on the hub: forget what this kiosk cached for it
                k.cache.purge_shopper_key(key)
            return ErrorResult("unknown_card", "credential not registered")
        except E.CredentialRefused as exc:
            return ErrorResult("refused", exc.detail)
        except E.Unauthorized as exc:
            k.sync.note_refused(exc)
            return self.refused_result()
        except (E.HubUnavailable, E.HubProtocolError, E.Forbidden) as exc:
            k.sync.note_online(False, str(exc))
            if k.sync.device_refused:  # the hub refused this kiosk: no profile, not even offline
                return self.refused_result()
            return self._offline_checkin(cred, key, cached, epoch)
        except E.HubError as exc:
            return ErrorResult("unreadable", exc.detail)
        if view.role in ("staff", "technician"):
            return BadgeResult(view.role, view.shopper_id, view.display_name)
        if key:
            try:
                k.cache.put_shopper(key, view)
            except E.StorageError:
                log.warning("could not cache a shopper view", exc_info=True)
        ref = {"checkin": checkin_id, "session": view.session, "shopper_id": view.shopper_id}
        if not view.session:
            del ref["session"]
        return self._begin(view, ref, key, epoch, event_id=checkin_id)

    def refused_result(self) -> ErrorResult:
        """A removed kiosk (revoked) asks the hub nothing; a refused token is tried again later."""
        sync = self.kiosk.sync
        return ErrorResult("device_revoked" if sync.device_revoked else "device_refused", sync.device_refused)

    def _cached_view(self, cached) -> api.ShopperView:
        """A cached view as shown offline: other brands' items only under sharing the hub
        confirmed (the row is younger than the TTL: `Cache.get_shopper` checks)."""
        view = replace(cached[0], source="cache", age_s=cached[1], verified=True, session="")
        if view.sharing != api.GRANTED:
            view = replace(view, wishlist=tuple(i for i in view.wishlist if i.brand == self.kiosk.identity.brand_id))
        return view

    def _offline_checkin(self, cred, key: str, cached, epoch: int) -> TapResult:
        """The hub cannot be asked: queue the check-in with its credential (verified by the hub
        on sync; the visit's events point at this check-in, so they are applied only if the hub
        accepts it, parked if not). A card token or UID may show its cached view; a SUN card or
        a phone is a guest: an unverified one-time proof never opens a cached profile."""
        k = self.kiosk
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
            event_id = k.outbox.append(api.CHECKIN, body)["event_id"]
            k.sync.wake()
        except E.StorageError as exc:
            log.error("check-in not recorded: %s", exc)
            warning = "storage"
        ref = {"checkin": event_id} if event_id else {}
        if view is not None:
            return self._begin(view, ref | {"shopper_id": view.shopper_id}, key, epoch, event_id=event_id,
                               warning=warning)
        guest = api.ShopperView(shopper_id="", display_name="", source="cache", verified=False)
        return self._begin(guest, ref, key, epoch, guest=True, event_id=event_id, warning=warning)

    def _begin(self, view: api.ShopperView, ref: dict, key: str, epoch: int, guest: bool = False, event_id: str = "",
               warning: str = "") -> ShopperResult | TapIgnored:
        view = self._overlay(view, ref)
        with self.kiosk.lock:
            if not self.kiosk.visit_began(epoch):  # the person's turn ended while the hub was asked
                return TapIgnored(self.kiosk.mode.value)
            self.session = Session(ref=ref, key=key, view=view, guest=guest)
        return ShopperResult(view, guest=guest, warning=warning, event_id=event_id)

    def end(self) -> None:
        with self.kiosk.lock:
            self.session = None

    def current(self) -> Session | None:
        with self.kiosk.lock:
            return self.session

    # -- what the hub tells this kiosk to forget -------------------------------------
    def revoked(self, named: dict[str, str]) -> None:
        """Sync thread: the hub named shoppers this kiosk must forget (their cached views are
        already purged). A consent revoked takes the other brands' items off the screen at once;
        an erased shopper or a revoked card ends the visit."""
        k = self.kiosk
        with k.lock:
            session = self.session
            kind = named.get(session.view.shopper_id) if session and session.view.shopper_id else None
            if kind == api.REVOKED_CONSENT:
                own = tuple(i for i in session.view.wishlist if i.brand == k.identity.brand_id)
                session.view = replace(session.view, wishlist=own, sharing=api.REFUSED)
                view = session.view
        if kind is None:
            return
        if kind == api.REVOKED_CONSENT:
            k.publish(ShopperResult(view, guest=session.guest))
        else:
            k.end_session("revoked")

    def token_refused(self) -> None:
        """Sync thread or tap worker: the hub refused this kiosk's token; no profile stays on screen."""
        with self.kiosk.lock:
            showing = self.session is not None and not self.session.guest
        if showing:
            self.kiosk.end_session("refused")

    def _overlay(self, view: api.ShopperView, ref: dict | None = None) -> api.ShopperView:
        """The view as the screen shows it: this kiosk's queued events applied, and only the
        offers valid now (a cached view's refreshed from the offers feed pulled since)."""
        k = self.kiosk
        zone = k.identity.config.get("timezone") if isinstance(k.identity.config, dict) else None
        view = catalog.shown_offers(view, k.cache, zone if isinstance(zone, str) else None)
        if not view.shopper_id and not ref:
            return view
        pending = k.outbox.pending_for("shopper_id", view.shopper_id) if view.shopper_id else []
        return apply_pending(view, pending, k.cache.inventory)

    # -- products ----------------------------------------------------------------------
    def scan(self, gtin: str, session: Session | None) -> None:
        """Every product tap a shopper makes is a `scan` event, whatever it then means: in a visit
        with the visit's proof (the hub keeps it with the shopper's scans), outside one anonymous."""
        try:
            self.kiosk.outbox.append(api.SCAN, {**(session.ref if session else {}), "gtin": gtin})
            self.kiosk.sync.wake()
        except E.StorageError:
            log.warning("a product scan was not recorded", exc_info=True)

    def product(self, tap: ProductTap) -> TapResult:
        k = self.kiosk
        stock = k.cache.inventory(tap.gtin) or {}
        session = self.current()
        self.scan(tap.gtin, session)
        if session is None:
            return stock_result(tap.gtin, stock)
        existing = next((i for i in session.view.wishlist if i.gtin == tap.gtin), None)
        if existing:  # saved already: the scan is all this tap records
            return ProductResult(tap.gtin, existing.title, saved=True, already_saved=True,
                                 available_here=existing.available_here, location=existing.location, view=session.view,
                                 texts=existing.texts or tuple(stock.get("texts", ())),
                                 description=existing.description, availability=stock.get("availability", ""))
        try:
            event = k.outbox.append(api.WISHLIST_ADD, {**session.ref, "gtin": tap.gtin})
        except E.StorageError as exc:
            return ErrorResult("storage", str(exc))
        k.sync.wake()
        with k.lock:
            if self.session is not session:  # the shopper left while we wrote
                return ProductResult(tap.gtin, stock.get("title", ""), saved=True, **catalog.product_texts(stock))
            session.view = apply_pending(session.view, [event], k.cache.inventory)
            view = session.view
        item = next(i for i in view.wishlist if i.gtin == tap.gtin)
        return ProductResult(tap.gtin, item.title, saved=True, available_here=item.available_here,
                             location=item.location, view=view, undo_token=event["event_id"],
                             texts=item.texts or tuple(stock.get("texts", ())), description=item.description,
                             availability=stock.get("availability", ""))

    def undo(self, undo_token: str) -> ShopperResult | ErrorResult:
        """Take back a wishlist add made in this session (observed-remove of that add's tag)."""
        session = self.current()
        if session is None:
            return ErrorResult("no_session")
        item = next((i for i in session.view.wishlist if undo_token in i.tags), None)
        if item is None:
            return ErrorResult("no_session", "nothing to undo")
        return self._remove(session, item)

    def remove_item(self, gtin: str) -> ShopperResult | ErrorResult:
        session = self.current()
        item = session and next((i for i in session.view.wishlist if i.gtin == gtin), None)
        if not item:
            return ErrorResult("no_session", "no such item")
        return self._remove(session, item)

    def _remove(self, session: Session, item: api.WishlistItem) -> ShopperResult | ErrorResult:
        k = self.kiosk
        try:
            event = k.outbox.append(api.WISHLIST_REMOVE, {**session.ref, "gtin": item.gtin, "tags": list(item.tags)})
        except E.StorageError as exc:
            return ErrorResult("storage", str(exc))
        k.sync.wake()
        with k.lock:
            session.view = apply_pending(session.view, [event], k.cache.inventory)
            return ShopperResult(session.view, guest=session.guest)

    def set_sharing(self, grant: bool) -> ShopperResult | ErrorResult:
        """The shopper's answer to "show items saved at other brands here?"."""
        k = self.kiosk
        session = self.current()
        if session is None or session.guest:
            return ErrorResult("no_session")
        try:
            k.outbox.append(api.CONSENT_GRANT if grant else api.CONSENT_REVOKE, {**session.ref, "from_brand": "*"})
        except E.StorageError as exc:
            return ErrorResult("storage", str(exc))
        k.sync.wake()
        view = session.view
        if session.view.session:
            try:  # the event reaches the hub first, then the hub's view reflects the answer
                k.sync.drain(max_batches=1, honour_backoff=False)
                fresh = k.hub.session_view(session.view.session, timeout=k.config.hub_timeout_s)
                if session.key:  # the hub's own view, confirmed now: never one with pending items on it
                    k.cache.put_shopper(session.key, fresh)
                view = self._overlay(fresh)
            except E.KioskError as exc:
                log.info("sharing answer queued; the hub's refreshed view is not available (%s)", type(exc).__name__)
        view = replace(view, sharing=api.GRANTED if grant else api.REFUSED)
        if not grant:
            view = replace(view, wishlist=tuple(i for i in view.wishlist if i.brand == k.identity.brand_id))
            if session.key:
                k.cache.purge_shopper_key(session.key)
        with k.lock:
            session.view = view
        return ShopperResult(view)


def stock_result(gtin: str, stock: dict) -> ProductResult:
    """A product tap outside a visit (or by staff): what the shelf here holds, nothing saved."""
    return ProductResult(gtin, stock.get("title", ""), saved=False, available_here=stock.get("quantity", 0),
                         location=stock.get("location", ""), **catalog.product_texts(stock))
