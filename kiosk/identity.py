"""What a tag means: shopper credential, product, or "can't read this tag" (DESIGN section 4).

Pure functions, no I/O. Every hostile or malformed input becomes an `Unreadable` with a
reason; nothing here raises to the caller.

    tap = classify(read, id_host="id.nfc-kiosk.dev")
    if isinstance(tap, ProductTap): ...
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import ndef

from drivers.base import HCE, MALFORMED, MAX_NDEF_BYTES, MOVED, TagRead
from kiosk.api import CRED_HCE, CRED_SUN, CRED_TOKEN, CRED_UID, TOKEN_RE, gtin_check_digit, shopper_uri  # noqa: F401

log = logging.getLogger(__name__)

DIGITAL_LINK_RE = re.compile(r"/01/(\d{8}|\d{12}|\d{13}|\d{14})(?=/|$)")
SUN_PATH = "/c"
MAX_URI_CHARS = 2048
ANDROID_APP_RECORD = "urn:nfc:ext:android.com:pkg"


@dataclass(frozen=True)
class Credential:
    """A shopper (or staff) credential. `stable_id` names the card or phone across taps
    (a SUN URL changes every tap; its card does not) and is only ever stored hashed."""

    kind: str
    stable_id: str
    wire: tuple[tuple[str, str], ...]  # what the hub needs to resolve/verify it

    def to_wire(self) -> dict:
        return {"kind": self.kind, **dict(self.wire)}

    def keyed_hash(self, key: bytes) -> str:
        return hmac.new(key, self.stable_id.encode(), hashlib.sha256).hexdigest()

    @property
    def needs_hub_verification(self) -> bool:
        return self.kind in (CRED_SUN, CRED_HCE)


@dataclass(frozen=True)
class ShopperTap:
    credential: Credential


@dataclass(frozen=True)
class ProductTap:
    gtin: str  # normalised GTIN-14
    uri: str


@dataclass(frozen=True)
class Unreadable:
    """`retry` means the shopper should simply hold the card still and try again."""

    reason: str
    retry: bool = False


Tap = ShopperTap | ProductTap | Unreadable


def normalise_gtin(gtin: str) -> str | None:
    """GTIN-8/12/13/14 -> 14 digits, or None when it is not a valid GTIN."""
    if not gtin.isascii() or not gtin.isdigit() or len(gtin) not in (8, 12, 13, 14):
        return None
    if gtin_check_digit(gtin[:-1]) != int(gtin[-1]):
        return None
    return gtin.zfill(14)


def digital_link(gtin: str, host: str = "id.gs1.org") -> str:
    gtin14 = normalise_gtin(gtin)
    if gtin14 is None:
        raise ValueError(f"not a valid GTIN: {gtin!r}")
    return f"https://{host}/01/{gtin14}"


def first_uri(message: bytes) -> str | Unreadable:
    """The first URI in an NDEF message (bare or inside a Smart Poster); other records,
    such as an Android Application Record, are ignored."""
    if len(message) > MAX_NDEF_BYTES:
        return Unreadable(f"NDEF message too large ({len(message)} bytes)")
    if not message:
        return Unreadable("the tag is empty")
    try:
        records = list(ndef.message_decoder(message, errors="strict"))
    except ndef.DecodeError as exc:
        return Unreadable(f"malformed NDEF: {exc}")
    except Exception as exc:  # ndeflib on hostile input: translate at the boundary
        log.debug("NDEF decoder failed", exc_info=True)
        return Unreadable(f"malformed NDEF ({type(exc).__name__})")
    for record in records:
        if isinstance(record, ndef.UriRecord):
            uri = record.iri
        elif isinstance(record, ndef.SmartposterRecord):
            uri = record.resource.iri if record.resource else ""
        else:
            continue
        if not uri or len(uri) > MAX_URI_CHARS or not uri.isprintable():
            return Unreadable("the tag holds an unusable link")
        return uri
    return Unreadable("the tag holds no link")


def classify_uri(uri: str, id_host: str) -> Tap:
    try:
        parts = urlsplit(uri)
        host = (parts.hostname or "").lower()
    except ValueError:
        return Unreadable("the tag holds a malformed link")
    if parts.scheme not in ("https", "http"):
        return Unreadable("the tag's link is not a web address")
    match = DIGITAL_LINK_RE.search(parts.path)
    if match:
        gtin = normalise_gtin(match.group(1))
        if gtin is None:
            return Unreadable("the product code on this tag is not valid (check digit)")
        return ProductTap(gtin=gtin, uri=uri)
    if host == id_host.lower() and parts.scheme == "https":
        if parts.path.startswith("/s/"):
            token = parts.path[3:]
            if TOKEN_RE.match(token):
                return ShopperTap(Credential(CRED_TOKEN, f"{CRED_TOKEN}:{token}", (("token", token),)))
            return Unreadable("this card's code is not valid")
        if parts.path == SUN_PATH:
            return _sun_tap(uri, parts.query)
    return Unreadable("this tag is not a kiosk card or a product tag")


def _sun_tap(uri: str, query: str) -> Tap:
    params = parse_qs(query)
    if not params.get("cmac") or not (params.get("picc_data") or params.get("uid")):
        return Unreadable("this secure card's message is incomplete")
    # The card's identity for caching: the mirrored UID in plain mode; in encrypted mode the
    # kiosk cannot decrypt it, so the caller keys it by the anticollision UID instead.
    uid = (params.get("uid") or [""])[0].lower()
    return ShopperTap(Credential(CRED_SUN, f"{CRED_SUN}:{uid}" if uid else "", (("url", uri),)))


def classify(read: TagRead, id_host: str) -> Tap:
    """A TagRead -> ShopperTap | ProductTap | Unreadable. Never raises."""
    try:
        return _classify(read, id_host)
    except Exception as exc:  # the last line of defence before the UI
        log.exception("tag classification failed")
        return Unreadable(f"unexpected tag content ({type(exc).__name__})")


def _classify(read: TagRead, id_host: str) -> Tap:
    if read.problem == MOVED:
        return Unreadable("the tag moved away during the read", retry=True)
    if read.problem:
        return Unreadable(read.detail or ("the tag answered nonsense" if read.problem == MALFORMED
                                          else "this tag cannot be read here"))
    if read.technology == HCE and read.hce is not None:
        a = read.hce
        return ShopperTap(Credential(CRED_HCE, f"{CRED_HCE}:{a.credential_id}", (
            ("credential_id", a.credential_id), ("nonce", a.nonce.hex()),
            ("kiosk_id", a.kiosk_id), ("signature", a.signature.hex()))))
    if read.ndef is not None:
        uri = first_uri(read.ndef)
        if isinstance(uri, Unreadable):
            if uri.reason in ("the tag is empty", "the tag holds no link") and read.uid:
                return _uid_tap(read.uid)
            return uri
        tap = classify_uri(uri, id_host)
        if isinstance(tap, ShopperTap) and tap.credential.kind == CRED_SUN and not tap.credential.stable_id:
            stable = f"{CRED_SUN}:{read.uid.hex()}" if read.uid else ""
            tap = ShopperTap(Credential(CRED_SUN, stable, tap.credential.wire))
        return tap
    if read.uid:
        return _uid_tap(read.uid)
    return Unreadable("nothing could be read from this tag")


def _uid_tap(uid: bytes) -> Tap:
    if not 4 <= len(uid) <= 10:
        return Unreadable("this card's serial number is not valid")
    return ShopperTap(Credential(CRED_UID, f"{CRED_UID}:{uid.hex()}", (("uid", uid.hex()),)))
