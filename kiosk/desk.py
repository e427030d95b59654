"""The staff and technician desk of the kiosk: PIN unlocks (staff badges verified by the hub,
the technician PIN kept hashed here), staff search and lookup, the reader test, health,
device settings and the technician PIN. An object KioskService holds (`service.desk`); it
changes the kiosk's mode only through the service (`kiosk.enter`), so the service always
knows what a tap means. Blocking calls (hub, disk, scrypt): the UI runs them in a worker
thread and gets the result back through its clock. Nothing here logs a shopper's name, a
search term or a PIN.
"""
from __future__ import annotations

import logging
from typing import Callable

from drivers.base import TagRead
from kiosk import api
from kiosk import errors as E
from kiosk.results import (BadgeResult, HealthResult, Mode, ProvisionResult, ReaderTestRead, StaffLookupResult,
                           StaffResult, StaffSearchResult, TapIgnored)
from kiosk.tagtool import describe

log = logging.getLogger(__name__)
LOCAL_TECHNICIAN = "local-technician"


class StaffDesk:
    def __init__(self, kiosk) -> None:
        self.kiosk = kiosk  # the KioskService: its parts, its mode and its dispatch
        self.staff: StaffResult | None = None  # the unlocked staff member or technician
        self.badge: BadgeResult | None = None  # the badge whose PIN is being typed
        self.leaving: StaffResult | None = None  # left staff mode; the hub is yet to hear it
        self._reader_test: Callable[[ReaderTestRead], None] | None = None

    # -- the reader test (technician mode) --------------------------------------------
    def show_reader_test(self, read: TagRead) -> bool:
        """Reader thread: during the reader test a read is described and shown, never a tap."""
        listener = self._reader_test
        if listener is None or self.kiosk.mode != Mode.READER_TEST:
            return False
        shown = ReaderTestRead(**describe(read, self.kiosk.config.id_host))
        self.kiosk.dispatch(lambda: listener(shown))
        return True

    def start_reader_test(self, listener: Callable[[ReaderTestRead], None]) -> bool:
        """Only from technician mode; False (nothing changes) otherwise."""
        if not self.kiosk.enter(Mode.READER_TEST, allowed_from=(Mode.TECHNICIAN, Mode.READER_TEST)):
            return False
        self._reader_test = listener
        return True

    def stop_reader_test(self) -> None:
        self._reader_test = None
        self.kiosk.enter(Mode.TECHNICIAN, allowed_from=(Mode.READER_TEST,))

    # -- unlocking ------------------------------------------------------------------
    def unlock(self, pin: str) -> StaffResult:
        """The PIN typed on the PIN screen: for the badge tapped, or the technician PIN. Blocking."""
        epoch, badge = self.kiosk.epoch, self.badge
        if badge is not None and self.kiosk.enrolled:
            return self.unlock_staff(badge, pin, epoch)
        return self.unlock_technician(pin, epoch)

    def unlock_staff(self, badge: BadgeResult, pin: str, epoch: int | None = None) -> StaffResult:
        """Badge tap + PIN, verified by the hub (it counts wrong tries and locks out)."""
        k = self.kiosk
        epoch = k.epoch if epoch is None else epoch
        try:
            data = k.hub.request("POST", "/v1/staff/sessions", json_body={"staff_id": badge.staff_id, "pin": pin},
                                 timeout=max(k.config.hub_timeout_s, 3.0))
        except E.HubUnavailable as exc:
            if exc.status == 429:  # too many PIN tries for this badge or kiosk: a lock-out, not an outage
                return StaffResult(False, badge.role, badge.staff_id, code="locked",
                                   locked_for_s=_locked_for(exc) or exc.retry_after or 0.0)
            return StaffResult(False, badge.role, badge.staff_id, code="offline")
        except E.HubError as exc:
            return _staff_refusal(badge, exc)
        if not isinstance(data, dict) or data.get("role") not in ("staff", "technician"):
            return StaffResult(False, badge.role, badge.staff_id, code="refused")
        return self._unlocked(StaffResult(True, data["role"], badge.staff_id, str(data.get("display_name", ""))), epoch)

    def check_technician_pin(self, pin: str) -> StaffResult:
        """The technician PIN kept hashed on this kiosk (works offline and before enrollment)."""
        from kiosk.staff import PinLock, PinLocked
        config = self.kiosk.config
        if not config.technician_pin_hash:
            return StaffResult(False, "technician", code="no_local_pin")
        lock = PinLock(config.data_dir / "pin-lock.json")
        try:
            ok = lock.check(pin, config.technician_pin_hash)
        except PinLocked as exc:
            return StaffResult(False, "technician", code="locked", locked_for_s=exc.seconds)
        if not ok:
            return StaffResult(False, "technician", code="wrong_pin", tries_left=lock.tries_left())
        return StaffResult(True, "technician", LOCAL_TECHNICIAN, "")

    def unlock_technician(self, pin: str, epoch: int | None = None) -> StaffResult:
        epoch = self.kiosk.epoch if epoch is None else epoch
        result = self.check_technician_pin(pin)
        return self._unlocked(result, epoch) if result.ok else result

    def _unlocked(self, result: StaffResult, epoch: int) -> StaffResult:
        """A right PIN opens staff or technician mode only on the PIN screen it was typed on: a
        PIN typed by someone who walked away (idle, cancel) or answered under the next person's
        PIN screen unlocks nothing, and the hub forgets the unlock it just granted."""
        k = self.kiosk
        mode = Mode.TECHNICIAN if result.role == "technician" else Mode.STAFF
        with k.lock:
            opened = epoch == k.epoch and k.enter(mode, allowed_from=(Mode.PIN,))
            if opened:
                self.staff, self.badge = result, None
        if not opened:
            self._forget_at_hub(result)
            return StaffResult(False, result.role, result.staff_id, code="cancelled")
        log.info("%s mode unlocked", result.role)
        return result

    def lock_staff(self) -> None:
        """Blocking: the hub forgets the staff unlock of the person who left (`reset` took it
        off this kiosk at once; this tells the hub, when reachable)."""
        with self.kiosk.lock:
            staff, self.leaving = self.leaving, None
        self._forget_at_hub(staff)

    def _forget_at_hub(self, staff: StaffResult | None) -> None:
        if staff and staff.staff_id != LOCAL_TECHNICIAN and self.kiosk.enrolled:
            try:
                self.kiosk.hub.request("DELETE", "/v1/staff/sessions", timeout=self.kiosk.config.hub_timeout_s)
            except E.KioskError as exc:
                log.info("the hub did not hear the staff lock (%s); its unlock expires by itself", type(exc).__name__)

    def reset(self) -> None:
        """The person's turn is over (kiosk.reset, a new PIN screen): no badge waits for a PIN, no
        reader test runs, and the unlock is gone from this kiosk at once; `leaving` keeps it for
        `lock_staff` to tell the hub."""
        self.badge = None
        self._reader_test = None
        if self.staff is not None:
            self.leaving, self.staff = self.staff, None

    # -- staff: search and lookup ------------------------------------------------------
    def staff_search(self, query: str) -> StaffSearchResult:
        """Shoppers who allowed staff search, by name; needs unlocked staff mode."""
        k = self.kiosk
        query = query.strip()
        if not self.staff or k.mode != Mode.STAFF:
            return StaffSearchResult(query, code="locked")
        if len(query) < 2:
            return StaffSearchResult(query, code="too_short")
        try:
            found = k.hub.staff_search(query, timeout=max(k.config.hub_timeout_s, 3.0))
        except E.HubUnavailable:
            return StaffSearchResult(query, code="offline")
        except E.HubError as exc:
            if isinstance(exc, E.Unauthorized):
                k.sync.note_refused(exc)
            return StaffSearchResult(query, code="locked" if exc.status == 403 else "offline")
        rows = tuple((str(s.get("id", "")), str(s.get("display_name", "")), str(s.get("full_name", "")))
                     for s in found if isinstance(s, dict) and s.get("id"))
        return StaffSearchResult(query, rows)

    def staff_lookup(self, shopper_id: str) -> StaffLookupResult:
        """A found shopper's wishlist with stock and location (the hub records this lookup itself)."""
        k = self.kiosk
        if not self.staff or k.mode != Mode.STAFF:
            return StaffLookupResult(None, "locked")
        try:
            data = k.hub.request("GET", f"/v1/staff/shoppers/{shopper_id}", timeout=max(k.config.hub_timeout_s, 3.0))
            view = api.ShopperView.from_json(data)
        except E.HubUnavailable:
            return StaffLookupResult(None, "offline")
        except E.NotFound:
            return StaffLookupResult(None, "not_found")
        except E.HubError as exc:
            if isinstance(exc, E.Unauthorized):
                k.sync.note_refused(exc)
            return StaffLookupResult(None, "locked" if exc.status == 403 else "offline")
        return StaffLookupResult(view)

    def tapped_shopper(self, result, epoch: int) -> object:
        """A shopper tapped in staff mode: their check-in (a visit) became a staff lookup,
        recorded as a staff_lookup event carrying the visit's proof and the staff member's id.
        The visit's session is not kept: product taps that follow only show stock. Staff who
        left while the hub was asked (`epoch` moved on) record nothing and see nothing."""
        k = self.kiosk
        with k.lock:
            session = k.visits.current()
            k.visits.end()
            staff = self.staff if epoch == k.epoch and k.mode == Mode.STAFF else None
        if staff is None:
            return TapIgnored(k.mode.value)
        if session is None or result.guest:
            return StaffLookupResult(None, "not_found")
        try:
            k.outbox.append(api.STAFF_LOOKUP, {**session.ref, "staff_id": staff.staff_id, "via": "tap"})
            k.sync.wake()
        except E.StorageError:
            log.error("a staff lookup could not be recorded", exc_info=True)
        return StaffLookupResult(session.view)

    # -- technician ----------------------------------------------------------------------
    def check_health(self) -> HealthResult | None:
        """Everything a technician's health screen shows, with a fresh hub round trip (None
        before the kiosk is enrolled: there is no hub to ask)."""
        k = self.kiosk
        if not k.enrolled:
            return None
        reachable, latency, error = False, None, ""
        try:
            latency = k.hub.health(timeout=max(k.config.hub_timeout_s, 3.0))
            reachable = True
            k.sync.note_online(True)
        except E.HubError as exc:
            error = exc.detail
            k.sync.note_online(False, error)
        return HealthResult(k.status(), reachable, latency, error)

    def update_settings(self, **changes):
        """Language and timeouts set on the technician screen; kept on this device (ValueError
        for a value out of range). The running kiosk takes them at once."""
        from kiosk.staff import DeviceSettings
        k = self.kiosk
        k.config = DeviceSettings(k.config.data_dir / "settings.json").save(k.config, **changes)
        return k.config

    def change_technician_pin(self, old: str, new: str, again: str) -> StaffResult:
        """The technician PIN changed on the technician screen (old PIN, new one twice): checked,
        hashed (scrypt: call it off the UI thread) and kept in this device's settings, never the
        config file; the running kiosk takes it at once, enrolled or not."""
        from kiosk.staff import change_technician_pin
        k = self.kiosk
        try:
            result, k.config = change_technician_pin(k.config, old, new, again, save=self.update_settings)
        except (ValueError, OSError, E.KioskError):
            log.error("the new technician PIN could not be stored", exc_info=True)
            return StaffResult(False, "technician", code="not_saved")
        return result


def enroll_device(config, hub_url: str, code: str) -> ProvisionResult:
    """Blocking: enroll with `hub_url` using `code` and store the new identity in the device file."""
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
