"""What the service tells the UI: plain frozen dataclasses, nothing to call back into.

Every message a person sees is chosen by the UI from `code`; `detail` is for technicians.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from kiosk.api import ShopperView


class Mode(str, Enum):
    """What the kiosk is doing; KioskService owns it and decides what a tap means in it."""

    ATTRACT = "attract"  # waiting: a card opens a visit, a product tap shows the product
    SHOPPER = "shopper"  # a visit: product taps are scanned and saved to the wishlist
    PIN = "pin"  # staff or a technician type a PIN: a tap records nothing
    STAFF = "staff"  # staff unlocked: a shopper's tap looks them up, a product's shows its stock
    TECHNICIAN = "technician"  # technician unlocked: a tap records nothing
    READER_TEST = "reader_test"  # the technician's reader test: a tap is only described


@dataclass(frozen=True)
class TapSeen:
    """Sent the instant a read arrives, before any lookup: the <100 ms feedback."""

    technology: str


@dataclass(frozen=True)
class ShopperResult:
    view: ShopperView
    provisional: bool = False  # a cached view shown while the hub is asked
    guest: bool = False  # unknown card while offline: scans queue and the hub attaches them later
    warning: str = ""  # e.g. "storage" when the check-in event could not be recorded
    event_id: str = ""  # the check-in: its id at the hub (online) or its queued event (offline, durable first)


@dataclass(frozen=True)
class ProductResult:
    gtin: str
    title: str
    saved: bool  # added to the active shopper's wishlist (durably queued)
    already_saved: bool = False
    available_here: int = 0
    location: str = ""
    view: ShopperView | None = None  # the shopper view with the item applied
    undo_token: str = ""  # pass to KioskService.undo() to take it back
    texts: tuple = ()  # the product's titles per language (kiosk.catalog.title_in picks one)
    description: str = ""
    availability: str = ""  # the store feed's: in_stock | out_of_stock | limited_availability | on_display_to_order


@dataclass(frozen=True)
class BadgeResult:
    """A staff or technician badge was tapped; the UI asks for the PIN."""

    role: str
    staff_id: str
    display_name: str


@dataclass(frozen=True)
class ErrorResult:
    # hold_still | unreadable | unknown_card | refused | storage | not_enrolled | no_session |
    # device_refused (the hub refused this kiosk's token: no profile is shown; staff must re-enroll it) |
    # device_revoked (the kiosk was removed from its brand's fleet: it asks the hub nothing until enrolled again)
    code: str
    detail: str = ""
    retry: bool = False


@dataclass(frozen=True)
class TapIgnored:
    """A tap in a mode where it means nothing (PIN entry, technician): nothing was recorded."""

    mode: str


@dataclass(frozen=True)
class ReaderChanged:
    """The reader came, went or failed. `ok`: it can read taps now (or is starting)."""

    ok: bool
    state: str  # drivers' ReaderState value: starting | connected | disconnected | failed | stopped
    detail: str = ""


@dataclass(frozen=True)
class OnlineChanged:
    """The hub became reachable or not, as the sync worker last saw it."""

    online: bool
    depth: int = 0  # events waiting in the outbox


@dataclass(frozen=True)
class SessionEnded:
    reason: str  # done | idle | revoked (erased or card revoked at the hub) | refused (device token refused) | ...


@dataclass(frozen=True)
class KioskStatus:
    online: bool
    reader_state: str
    reader_detail: str
    outbox_depth: int
    parked: int
    parked_events: tuple = ()
    last_sync: float = 0.0
    last_error: str = ""
    hub_latency_ms: float | None = None
    free_disk_bytes: int = 0
    low_disk: bool = False
    version: str = ""
    device_id: str = ""
    store_id: str = ""
    hub_url: str = ""
    cache_rebuilt: bool = False
    device_refused: str = ""  # why the hub refused this kiosk's device token ("" when it accepts it)
    device_revoked: bool = False  # removed from the fleet: nothing is sent until it is enrolled again


TapResult = ShopperResult | ProductResult | BadgeResult | ErrorResult | TapIgnored


# -- staff, technician and images (the touch UI; docs/ui.md) ---------------------
@dataclass(frozen=True)
class StaffResult:
    """The answer to a staff or technician unlock. `code` says why not: wrong_pin | locked |
    badge_required | offline | no_local_pin | refused."""

    ok: bool
    role: str = ""  # staff | technician
    staff_id: str = ""
    display_name: str = ""
    code: str = ""
    locked_for_s: float = 0.0
    tries_left: int | None = None


@dataclass(frozen=True)
class StaffSearchResult:
    query: str
    shoppers: tuple = ()  # ((shopper_id, display_name, full_name), ...)
    code: str = ""  # "" | too_short | offline | locked


@dataclass(frozen=True)
class StaffLookupResult:
    view: ShopperView | None
    code: str = ""  # "" | offline | locked | not_found


@dataclass(frozen=True)
class ReaderTestRead:
    """One tag as the technician's reader test shows it (shopper tokens masked)."""

    technology: str
    tag_type: str
    uid: str
    read_ms: float
    meaning: str  # card | phone | product | unreadable | hold_still
    detail: str
    records: tuple = ()


@dataclass(frozen=True)
class HealthResult:
    status: KioskStatus
    hub_reachable: bool
    hub_latency_ms: float | None = None
    hub_error: str = ""


@dataclass(frozen=True)
class ProvisionResult:
    ok: bool
    code: str = ""  # "" | bad_url | insecure_url | refused | offline | events_waiting
    detail: str = ""
    device_id: str = ""
    brand_name: str = ""
    store_name: str = ""
    hub_url: str = ""
