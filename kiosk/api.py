"""The hub API v1 contract shared by the kiosk's client and the reference hub.

Plain frozen dataclasses, the event types and the RFC 9457 problem types. The kiosk works
against any server honouring these shapes; `from_json` functions refuse anything else with
`HubProtocolError`, so a hub that lies never reaches the screen as half a shopper.
"""
from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from kiosk.errors import HubProtocolError

# The phone credential (docs/phone-credential.md): what the phone signs is
# HCE_DOMAIN || nonce || kiosk id (UTF-8); the domain tag keeps the key from ever signing
# something that could be mistaken for another protocol's message.
HCE_NONCE_BYTES = 16
HCE_DOMAIN = b"kiosk-hce-v1"


def hce_signed_message(nonce: bytes, kiosk_id: str) -> bytes:
    return HCE_DOMAIN + nonce + kiosk_id.encode("utf-8")


# Tag formats both sides write and read (kiosk.identity parses them).
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def gtin_check_digit(body: str) -> int:
    """GS1 mod-10 check digit for the digits before it."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def offer_moment(value: str, zone, end: bool) -> float | None:
    """An offer's valid_from (end=False) or valid_until (end=True) in unix time, the rule both
    sides keep: a date is a whole day in `zone` (valid_until 2026-12-31 ends at the midnight
    after it), a time without offset is in `zone` too (None: local time). None when not given;
    NaN when unreadable (it compares false both ways: such an offer is never shown)."""
    import datetime as dt
    if not value:
        return None
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value) + dt.timedelta(days=1 if end else 0)
            return dt.datetime.combine(day, dt.time(), zone).timestamp()
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).timestamp()
    except (ValueError, OverflowError, OSError):
        return float("nan")


def shopper_uri(token: str, id_host: str) -> str:
    if not TOKEN_RE.match(token):
        raise ValueError("a shopper token is 16-128 characters of A-Z a-z 0-9 _ -")
    return f"https://{id_host}/s/{token}"


SESSION_HEADER = "Kiosk-Session"  # the hub-issued check-in session, for GET /v1/session/view
PROBLEM_BASE = "https://nfc-kiosk.dev/problems/"

CHECKIN = "checkin"
SCAN = "scan"
WISHLIST_ADD = "wishlist_add"
WISHLIST_REMOVE = "wishlist_remove"
CONSENT_GRANT = "consent_grant"
CONSENT_REVOKE = "consent_revoke"
STAFF_LOOKUP = "staff_lookup"
EVENT_TYPES = (CHECKIN, SCAN, WISHLIST_ADD, WISHLIST_REMOVE, CONSENT_GRANT, CONSENT_REVOKE, STAFF_LOOKUP)

# Per-event outcomes of POST /v1/events:batch
CREATED, DUPLICATE, REJECTED = "created", "duplicate", "rejected"

# Problem types (the stable `type` of an application/problem+json answer)
P_UNAUTHORIZED = PROBLEM_BASE + "unauthorized"
P_FORBIDDEN = PROBLEM_BASE + "forbidden"
P_NOT_FOUND = PROBLEM_BASE + "not-found"
P_UNKNOWN_CREDENTIAL = PROBLEM_BASE + "unknown-credential"
P_CREDENTIAL_REFUSED = PROBLEM_BASE + "credential-refused"
P_ENROLLMENT_REFUSED = PROBLEM_BASE + "enrollment-refused"
P_INVALID = PROBLEM_BASE + "invalid-request"
P_DEVICE_REVOKED = PROBLEM_BASE + "device-revoked"  # a technician removed this kiosk from its brand's fleet
P_BADGE_REQUIRED = PROBLEM_BASE + "staff-badge-required"
P_PIN_REFUSED = PROBLEM_BASE + "pin-refused"  # carries M_TRIES_LEFT
P_PIN_LOCKED = PROBLEM_BASE + "pin-locked"  # carries M_RETRY_AFTER_S
# RFC 9457 extension members: the numbers of a problem, read from them, never from its `detail`
M_RETRY_AFTER_S = "retry_after_s"  # seconds until a locked-out or rate-limited try may be made again
M_TRIES_LEFT = "tries_left"  # wrong PINs left before the lock-out

# Kinds of the revocation feed (GET /v1/revocations): what every kiosk must forget.
REVOKED_CONSENT, REVOKED_CREDENTIAL, SHOPPER_ERASED = "consent_revoked", "credential_revoked", "shopper_erased"

# Sharing (consent) states a check-in reports for the kiosk's brand.
GRANTED, REFUSED, UNDECIDED = "granted", "refused", "undecided"

# Credential kinds (what a tag proved)
CRED_TOKEN, CRED_UID, CRED_SUN, CRED_HCE = "token", "uid", "sun", "hce"


def uuid7() -> str:
    """A time-ordered UUID (RFC 9562 version 7): 48-bit ms timestamp, then randomness."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | rand & ((1 << 80) - 1)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # variant
    return str(uuid.UUID(int=value))


def _req(data: dict, key: str, kind: type | tuple, where: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise HubProtocolError(f"{where}: missing '{key}'")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise HubProtocolError(f"{where}: '{key}' has the wrong type")
    return value


def _opt(data: dict, key: str, kind: type | tuple, default: Any = None) -> Any:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise HubProtocolError(f"'{key}' has the wrong type")
    return value


# Texts per language (issue 10): {tag: {"title", "description"}} for products, {tag: title}
# for offers. Kept as sorted tuples so the frozen views stay hashable and comparable.
MAX_LANGUAGES = 64
MAX_TITLE_CHARS, MAX_DESCRIPTION_CHARS = 200, 2000
LANGUAGE_TAG_RE = re.compile(r"^[a-z]{2,8}(-[a-z0-9]{1,8}){0,7}$")
Texts = tuple  # ((tag, title, description), ...), tags lower case with "-"


def language_tag(tag: str) -> str:
    """"th_TH" and "TH-th" are the tag "th-th" (BCP 47 tags are case-insensitive)."""
    return (tag or "").strip().replace("_", "-").lower()


def parse_texts(d: dict, key: str, titles_only: bool = False) -> Texts:
    """A `texts` ({tag: {"title", "description"}}) or `titles` ({tag: title}) member, checked:
    absent (an older hub) is (), a wrong type or too many languages is a protocol error, a
    text longer than the contract allows is cut to it."""
    value = d.get(key) if isinstance(d, dict) else None
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise HubProtocolError(f"'{key}' is not an object")
    if len(value) > MAX_LANGUAGES:
        raise HubProtocolError(f"'{key}' names more than {MAX_LANGUAGES} languages")
    out = {}
    for raw_tag, entry in value.items():
        tag = language_tag(raw_tag) if isinstance(raw_tag, str) else ""
        if not LANGUAGE_TAG_RE.match(tag):
            raise HubProtocolError(f"'{key}': {str(raw_tag)[:40]!r} is not a language tag")
        if titles_only:
            if not isinstance(entry, str):
                raise HubProtocolError(f"'{key}' holds a title that is not text")
            title, description = entry, ""
        else:
            if not isinstance(entry, dict):
                raise HubProtocolError(f"'{key}' holds an entry that is not an object")
            title, description = _opt(entry, "title", str, ""), _opt(entry, "description", str, "")
        out[tag] = (tag, title[:MAX_TITLE_CHARS], description[:MAX_DESCRIPTION_CHARS])
    return tuple(out[t] for t in sorted(out))


def texts_json(texts: Texts, titles_only: bool = False) -> dict:
    """The wire shape of `parse_texts`' result (the cache stores views as the hub sent them)."""
    if titles_only:
        return {tag: title for tag, title, _ in texts}
    return {tag: {"title": title, "description": description} for tag, title, description in texts}


def _text(d: dict, key: str, where: str, limit: int = MAX_TITLE_CHARS) -> str:
    return _req(d, key, str, where)[:limit]


@dataclass(frozen=True)
class WishlistItem:
    gtin: str
    title: str
    brand: str  # brand id
    brand_name: str
    price: str = ""  # decimal string, e.g. "129000" or "19.90"
    currency: str = ""
    image: str = ""  # image path on the hub ("/v1/images/<gtin>.png")
    available_here: int = 0
    location: str = ""  # "aisle 4"
    elsewhere: tuple[str, ...] = ()  # other stores of this brand that have it
    online: bool = False
    tags: tuple[str, ...] = ()  # live add tags of the observed-remove set
    on_promotion: bool = False
    pending: bool = False  # saved on this kiosk, not yet confirmed by the hub
    description: str = ""  # in the shopper's locale, like `title` (the hub chose it)
    texts: Texts = ()  # every language the brand wrote: kiosk.catalog.title_in picks the screen's
    now_on_shelf: bool = False  # watched at this store ("tell me when it is on the shelf here") and on it now

    @classmethod
    def from_json(cls, d: dict) -> "WishlistItem":
        where = "wishlist item"
        gtin = _req(d, "gtin", str, where)
        if not (gtin.isdigit() and len(gtin) == 14):
            raise HubProtocolError("wishlist item: gtin is not 14 digits")
        return cls(
            gtin=gtin, title=_text(d, "title", where), brand=_req(d, "brand", str, where),
            brand_name=_opt(d, "brand_name", str, ""), price=str(_opt(d, "price", (str, int, float), "")),
            currency=_opt(d, "currency", str, ""), image=_opt(d, "image", str, ""),
            available_here=int(_opt(d, "available_here", int, 0)), location=_opt(d, "location", str, ""),
            elsewhere=tuple(_opt(d, "elsewhere", list, [])), online=bool(_opt(d, "online", bool, False)),
            tags=tuple(_opt(d, "tags", list, [])), on_promotion=bool(_opt(d, "on_promotion", bool, False)),
            description=_opt(d, "description", str, "")[:MAX_DESCRIPTION_CHARS], texts=parse_texts(d, "texts"),
            now_on_shelf=bool(_opt(d, "now_on_shelf", bool, False)),  # an older hub sends none
        )


@dataclass(frozen=True)
class Offer:
    offer_id: str
    title: str
    kind: str  # brand | first_visit | returning | lapsed | wishlist_promo
    personal: bool = False
    gtin: str = ""
    discount_pct: int = 0
    valid_until: str = ""  # "" | ISO date (to the end of that day, store time) | ISO datetime
    valid_from: str = ""
    texts: Texts = ()  # the wire's "titles" {tag: title}, as (tag, title, "")

    @classmethod
    def from_json(cls, d: dict) -> "Offer":
        where = "offer"
        return cls(
            offer_id=str(_req(d, "id", (str, int), where))[:128], title=_text(d, "title", where),
            kind=_req(d, "kind", str, where), personal=bool(_opt(d, "personal", bool, False)),
            gtin=_opt(d, "gtin", str, ""), discount_pct=int(_opt(d, "discount_pct", int, 0)),
            valid_until=_opt(d, "valid_until", str, "")[:40], valid_from=_opt(d, "valid_from", str, "")[:40],
            texts=parse_texts(d, "titles", titles_only=True),
        )

    def to_json(self) -> dict:
        return {"id": self.offer_id, "title": self.title, "kind": self.kind, "personal": self.personal,
                "gtin": self.gtin, "discount_pct": self.discount_pct, "valid_until": self.valid_until,
                "valid_from": self.valid_from, "titles": texts_json(self.texts, titles_only=True)}


def offer_delta(d: Any) -> dict:
    """One row of the offers feed, checked: {"id", "deleted": True}, or an offer (kept as the
    hub sent it, once `Offer.from_json` accepted it)."""
    if not isinstance(d, dict):
        raise HubProtocolError("offers answer: a row is not an object")
    offer_id = str(_req(d, "id", (str, int), "offer"))
    if d.get("deleted") is True:
        return {"id": offer_id, "deleted": True}
    offer = Offer.from_json(d)
    return offer.to_json()


AVAILABILITY = ("in_stock", "out_of_stock", "limited_availability", "on_display_to_order")


def inventory_item(d: Any) -> dict:
    """One row of the inventory feed, checked and bounded, in the shape the cache keeps."""
    where = "inventory item"
    if not isinstance(d, dict):
        raise HubProtocolError(f"{where} is not an object")
    gtin = _req(d, "gtin", str, where)
    if not (gtin.isdigit() and len(gtin) == 14):
        raise HubProtocolError(f"{where}: gtin is not 14 digits")
    quantity = _opt(d, "quantity", int, 0)
    if isinstance(quantity, bool):
        raise HubProtocolError(f"{where}: 'quantity' has the wrong type")
    availability = _opt(d, "availability", str, "")
    return {"gtin": gtin, "quantity": max(0, quantity), "location": _opt(d, "location", str, "")[:64],
            "title": _opt(d, "title", str, "")[:MAX_TITLE_CHARS],
            "price": str(_opt(d, "price", (str, int, float), ""))[:32], "currency": _opt(d, "currency", str, "")[:8],
            "brand": _opt(d, "brand", str, "")[:64], "brand_name": _opt(d, "brand_name", str, "")[:120],
            "description": _opt(d, "description", str, "")[:MAX_DESCRIPTION_CHARS],
            "availability": availability if availability in AVAILABILITY else "",
            "texts": parse_texts(d, "texts")}


@dataclass(frozen=True)
class ShopperView:
    """What a check-in shows. `source` is "hub" or "cache"; `age_s` is how old a cached view is."""

    shopper_id: str
    display_name: str
    locale: str = ""
    role: str = "shopper"  # shopper | staff | technician
    wishlist: tuple[WishlistItem, ...] = ()
    offers: tuple[Offer, ...] = ()
    sharing: str = UNDECIDED
    hidden_items: int = 0  # items at other brands not shown because sharing is not granted
    visit: str = "returning"  # first | returning | lapsed
    allow_staff_search: bool = False
    source: str = "hub"
    age_s: float = 0.0
    verified: bool = True  # False for an offline SUN/HCE tap the hub has not verified yet
    session: str = ""  # hub-issued, short-lived: lets this kiosk refresh the view; never cached

    @classmethod
    def from_json(cls, d: dict) -> "ShopperView":
        if not isinstance(d, dict):
            raise HubProtocolError("check-in answer is not an object")
        shopper = _req(d, "shopper", dict, "check-in")
        consent = _opt(d, "consent", dict, {})
        sharing = _opt(consent, "sharing", str, UNDECIDED)
        if sharing not in (GRANTED, REFUSED, UNDECIDED):
            raise HubProtocolError("check-in: unknown sharing state")
        try:
            wishlist = tuple(WishlistItem.from_json(i) for i in _opt(d, "wishlist", list, []))
            offers = tuple(Offer.from_json(o) for o in _opt(d, "offers", list, []))
        except (TypeError, ValueError, AttributeError) as exc:
            raise HubProtocolError(f"check-in: malformed list ({exc})") from None
        return cls(
            shopper_id=str(_req(shopper, "id", (str, int), "shopper")),
            display_name=_req(shopper, "display_name", str, "shopper"),
            locale=_opt(shopper, "locale", str, ""), role=_opt(shopper, "role", str, "shopper"),
            allow_staff_search=bool(_opt(shopper, "allow_staff_search", bool, False)),
            wishlist=wishlist, offers=offers, sharing=sharing,
            hidden_items=int(_opt(consent, "hidden_items", int, 0)),
            visit=_opt(d, "visit", str, "returning"), session=_opt(d, "session", str, ""),
        )

    def to_json(self) -> dict:
        """The same shape `from_json` reads (used by the cache)."""
        return {
            "shopper": {"id": self.shopper_id, "display_name": self.display_name, "locale": self.locale,
                        "role": self.role, "allow_staff_search": self.allow_staff_search},
            "wishlist": [{**{k: getattr(i, k) for k in WishlistItem.__dataclass_fields__ if k != "pending"},
                          "elsewhere": list(i.elsewhere), "tags": list(i.tags), "texts": texts_json(i.texts)}
                         for i in self.wishlist],
            "offers": [o.to_json() for o in self.offers],
            "consent": {"sharing": self.sharing, "hidden_items": self.hidden_items},
            "visit": self.visit,
        }


@dataclass(frozen=True)
class Enrollment:
    device_id: str
    device_token: str
    brand_id: str
    brand_name: str
    store_id: str
    store_name: str
    config: dict = field(default_factory=dict)
    # The hub no longer hands out a key: the kiosk keys its cache with a random key of its own
    # (kept beside the enrollment in the device file). An old hub's `credential_key` is ignored.

    @classmethod
    def from_json(cls, d: dict) -> "Enrollment":
        w = "enrollment"
        return cls(
            device_id=_req(d, "device_id", str, w), device_token=_req(d, "device_token", str, w),
            brand_id=_req(d, "brand_id", str, w), brand_name=_opt(d, "brand_name", str, ""),
            store_id=_req(d, "store_id", str, w), store_name=_opt(d, "store_name", str, ""),
            config=_opt(d, "config", dict, {}),
        )


@dataclass(frozen=True)
class EventOutcome:
    event_id: str
    status: str  # created | duplicate | rejected
    reason: str = ""


def parse_batch_answer(d: Any, sent_ids: list[str]) -> list[EventOutcome]:
    """Per-event outcomes; an answer that skips or invents events is a protocol error."""
    results = _req(d, "results", list, "batch answer") if isinstance(d, dict) else None
    if results is None:
        raise HubProtocolError("batch answer is not an object")
    outcomes = []
    for r in results:
        event_id = _req(r, "event_id", str, "batch result")
        status = _req(r, "status", str, "batch result")
        if status not in (CREATED, DUPLICATE, REJECTED):
            raise HubProtocolError(f"batch result: unknown status {status!r}")
        outcomes.append(EventOutcome(event_id, status, _opt(r, "reason", str, "")))
    if sorted(o.event_id for o in outcomes) != sorted(sent_ids):
        raise HubProtocolError("batch answer does not match the events sent")
    return outcomes
