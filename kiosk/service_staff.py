"""Staff, technician and image verbs of KioskService (the touch UI, docs/ui.md).

A mixin so KioskService stays the one object the UI talks to, while each module stays
small. Blocking calls (hub, disk): the UI runs them in a worker thread and gets the
result back through Clock. None of them logs a shopper's name, a search term or a PIN.
"""
from __future__ import annotations

import logging
from typing import Callable

from drivers.base import TagRead
from kiosk import api
from kiosk import errors as E
from kiosk.results import (BadgeResult, HealthResult, ProvisionResult, ReaderTestRead, StaffLookupResult,
                           StaffResult, StaffSearchResult)
from kiosk.tagtool import describe

log = logging.getLogger(__name__)


class StaffDesk:
    """Needs from the host class: config, identity, hub, outbox, cache, sync, images,
    dispatch, _staff, _reader_test, _session, _lock, status()."""

    # Blocking calls (hub, disk): the UI runs them in a worker thread and gets the result
    # back through Clock. None of them logs a shopper's name, a search term or a PIN.
    def _show_reader_test(self, read: TagRead) -> None:
        listener = self._reader_test
        shown = ReaderTestRead(**describe(read, self.config.id_host))
        self.dispatch(lambda: listener(shown))

    def start_reader_test(self, listener: Callable[[ReaderTestRead], None]) -> None:
        self._reader_test = listener

    def stop_reader_test(self) -> None:
        self._reader_test = None

    @property
    def staff(self) -> StaffResult | None:
        """The unlocked staff or technician, or None."""
        return self._staff

    def unlock_staff(self, badge: BadgeResult, pin: str) -> StaffResult:
        """Badge tap + PIN, verified by the hub (it counts wrong tries and locks out)."""
        try:
            data = self.hub.request("POST", "/v1/staff/sessions", json_body={"staff_id": badge.staff_id, "pin": pin},
                                    timeout=max(self.config.hub_timeout_s, 3.0))
        except E.HubUnavailable as exc:
            if exc.status == 429:  # too many PIN tries for this badge or kiosk: a lock-out, not an outage
                return StaffResult(False, badge.role, badge.staff_id, code="locked",
                                   locked_for_s=_locked_for(exc) or exc.retry_after or 0.0)
            return StaffResult(False, badge.role, badge.staff_id, code="offline")
        except E.HubError as exc:
            return _staff_refusal(badge, exc)
        if not isinstance(data, dict) or data.get("role") not in ("staff", "technician"):
            return StaffResult(False, badge.role, badge.staff_id, code="refused")
        self._staff = StaffResult(True, data["role"], badge.staff_id, str(data.get("display_name", "")))
        log.info("%s mode unlocked", self._staff.role)
        return self._staff

    @staticmethod
    def check_technician_pin(config, pin: str) -> StaffResult:
        """The technician PIN kept hashed on this kiosk (works offline and before enrollment)."""
        from kiosk.staff import PinLock, PinLocked
        if not config.technician_pin_hash:
            return StaffResult(False, "technician", code="no_local_pin")
        lock = PinLock(config.data_dir / "pin-lock.json")
        try:
            ok = lock.check(pin, config.technician_pin_hash)
        except PinLocked as exc:
            return StaffResult(False, "technician", code="locked", locked_for_s=exc.seconds)
        if not ok:
            return StaffResult(False, "technician", code="wrong_pin", tries_left=lock.tries_left())
        return StaffResult(True, "technician", "local-technician", "")

    def unlock_technician(self, pin: str) -> StaffResult:
        result = self.check_technician_pin(self.config, pin)
        if result.ok:
            self._staff = result
            log.info("technician mode unlocked with the local PIN")
        return result

    def lock_staff(self) -> None:
        """Leave staff or technician mode (the hub forgets the unlock too, when reachable)."""
        staff, self._staff = self._staff, None
        self._reader_test = None
        if staff and staff.staff_id != "local-technician":
            try:
                self.hub.request("DELETE", "/v1/staff/sessions", timeout=self.config.hub_timeout_s)
            except E.KioskError as exc:
                log.info("the hub did not hear the staff lock (%s); its unlock expires by itself", type(exc).__name__)

    def staff_search(self, query: str) -> StaffSearchResult:
        """Shoppers who allowed staff search, by name; needs unlocked staff mode."""
        query = query.strip()
        if not self._staff:
            return StaffSearchResult(query, code="locked")
        if len(query) < 2:
            return StaffSearchResult(query, code="too_short")
        try:
            found = self.hub.staff_search(query, timeout=max(self.config.hub_timeout_s, 3.0))
        except E.HubUnavailable:
            return StaffSearchResult(query, code="offline")
        except E.HubError as exc:
            if isinstance(exc, E.Unauthorized):
                self.sync.note_refused(exc)
            return StaffSearchResult(query, code="locked" if exc.status == 403 else "offline")
        rows = tuple((str(s.get("id", "")), str(s.get("display_name", "")), str(s.get("full_name", "")))
                     for s in found if isinstance(s, dict) and s.get("id"))
        return StaffSearchResult(query, rows)

    def staff_lookup(self, shopper_id: str) -> StaffLookupResult:
        """A found shopper's wishlist with stock and location (the hub records this lookup itself)."""
        staff = self._staff
        if not staff:
            return StaffLookupResult(None, "locked")
        try:
            data = self.hub.request("GET", f"/v1/staff/shoppers/{shopper_id}", timeout=max(self.config.hub_timeout_s, 3.0))
            view = api.ShopperView.from_json(data)
        except E.HubUnavailable:
            return StaffLookupResult(None, "offline")
        except E.NotFound:
            return StaffLookupResult(None, "not_found")
        except E.HubError as exc:
            if isinstance(exc, E.Unauthorized):
                self.sync.note_refused(exc)
            return StaffLookupResult(None, "locked" if exc.status == 403 else "offline")
        return StaffLookupResult(view)

    def staff_lookup_session(self) -> StaffLookupResult:
        """The shopper who just tapped while staff mode is unlocked: recorded as a staff_lookup
        event carrying the visit's proof (its check-in) and the staff member's id."""
        staff = self._staff
        with self._lock:
            session = self._session
        if not staff or session is None:
            return StaffLookupResult(None, "locked" if not staff else "not_found")
        self._record_lookup(session.ref, staff, "tap")
        return StaffLookupResult(session.view)

    def _record_lookup(self, ref: dict, staff: StaffResult, via: str) -> None:
        try:
            self.outbox.append(api.STAFF_LOOKUP, {**ref, "staff_id": staff.staff_id, "via": via})
            self.sync.wake()
        except E.StorageError:
            log.error("a staff lookup could not be recorded", exc_info=True)

    def check_health(self) -> HealthResult:
        """Everything a technician's health screen shows, with a fresh hub round trip."""
        reachable, latency, error = False, None, ""
        try:
            latency = self.hub.health(timeout=max(self.config.hub_timeout_s, 3.0))
            reachable = True
            self.sync.note_online(True)
        except E.HubError as exc:
            error = exc.detail
            self.sync.note_online(False, error)
        return HealthResult(self.status(), reachable, latency, error)

    def provision(self, hub_url: str, code: str) -> ProvisionResult:
        """Enroll again (new hub, store or code). Refused while events still wait for the
        current hub, unless the hub refused or removed this kiosk and it enrolls with that same
        hub again: then the new identity delivers them (the old token goes along as proof, so
        the hub accepts the events that point at the old device's check-ins). The caller
        rebuilds the service."""
        from kiosk.app import same_url
        waiting = self.outbox.depth() + self.outbox.parked_count()
        if waiting and not (self.sync.device_refused and same_url(hub_url, self.hub_url)):
            return ProvisionResult(False, "events_waiting", f"{waiting} event(s) wait for {self.hub_url}")
        return self.enroll_device(self.config, hub_url, code)

    @staticmethod
    def enroll_device(config, hub_url: str, code: str) -> ProvisionResult:
        from kiosk.hubclient import transport_problem
        from kiosk.provisioning import enroll
        from kiosk.staff import valid_hub_url
        hub_url, code = hub_url.strip().rstrip("/"), code.strip()
        if not valid_hub_url(hub_url):
            return ProvisionResult(False, "bad_url", hub_url=hub_url)
        insecure = transport_problem(hub_url, config.allow_insecure_hub)
        if insecure:
            return ProvisionResult(False, "insecure_url", insecure, hub_url=hub_url)
        try:
            identity = enroll(hub_url, code, config.device_name, config.device_file,
                              allow_insecure=config.allow_insecure_hub)
        except E.HubUnavailable as exc:
            return ProvisionResult(False, "offline", exc.detail, hub_url=hub_url)
        except E.KioskError as exc:
            return ProvisionResult(False, "refused", exc.detail, hub_url=hub_url)
        return ProvisionResult(True, "", "", identity.device_id, identity.brand_name, identity.store_name, hub_url)

    def update_settings(self, **changes):
        """Language and timeouts set on the technician screen; kept on this device."""
        from kiosk.staff import DeviceSettings
        self.config = DeviceSettings(self.config.data_dir / "settings.json").save(self.config, **changes)
        return self.config

    def change_technician_pin(self, old: str, new: str, again: str):
        """The technician PIN changed on the technician screen (old PIN, new one twice): checked,
        hashed (scrypt: call it off the UI thread) and kept in this device's settings, never the
        config file; the running kiosk takes it at once. A StaffResult says how it went."""
        from kiosk.staff import change_technician_pin
        result, self.config = change_technician_pin(self.config, old, new, again, save=self.update_settings)
        return result

    def image_file(self, path: str):
        """A product image already on disk, or None (no network)."""
        try:
            return self.images.local(path)
        except Exception:  # a damaged cache row only costs the picture
            log.warning("image lookup failed", exc_info=True)
            return None

    def fetch_image(self, path: str):
        """Blocking: the image file, downloaded once and kept for offline use; None if there is none."""
        try:
            return self.images.fetch(path, timeout=max(self.config.hub_timeout_s, 3.0))
        except (E.KioskError, OSError) as exc:
            log.info("product image not fetched (%s)", type(exc).__name__)
            return None


MAX_LOCK_SHOWN_S = 24 * 3600.0  # the hub's longest lock-out; a larger number is not believed


def _locked_for(exc: E.KioskError) -> float:
    """The lock-out's seconds from the problem's `retry_after_s` member; 0 (unknown) without one."""
    seconds = exc.number(api.M_RETRY_AFTER_S)
    return min(seconds, MAX_LOCK_SHOWN_S) if seconds is not None else 0.0


def _staff_refusal(badge: BadgeResult, exc: E.HubError) -> StaffResult:
    """The hub's refusal as the PIN screen shows it. The numbers come from the problem's
    extension members (an older hub that sends none: locked for an unknown time, tries left
    unknown), never from its text, which is for people and may change or be translated."""
    kind = exc.problem_type
    if kind == api.P_PIN_LOCKED:
        return StaffResult(False, badge.role, badge.staff_id, code="locked", locked_for_s=_locked_for(exc))
    if kind == api.P_PIN_REFUSED:
        tries = exc.number(api.M_TRIES_LEFT)
        return StaffResult(False, badge.role, badge.staff_id, code="wrong_pin",
                           tries_left=int(tries) if tries is not None and tries == int(tries) else None)
    if kind == api.P_BADGE_REQUIRED:
        return StaffResult(False, badge.role, badge.staff_id, code="badge_required")
    return StaffResult(False, badge.role, badge.staff_id, code="refused")
