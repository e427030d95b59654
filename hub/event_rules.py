"""What a kiosk event must be, and prove, before hub/events.py applies it. Nothing here writes.

From the event alone (`malformed`, before any database work): its shape and sizes, a known
type, and a proof of the right form (a credential, a check-in's event id, a session token);
an event with none is refused unless it is an anonymous product scan. From the proofs a run
looked up (`Proofs.owner`): whose the event is, every proof agreeing with the others and with
the kiosk's cached `shopper_id`, and whether the shopper was shown present. From its type
(`check_type`): a sharing change needs the shopper present, a staff lookup a staff member of
the kiosk's brand who unlocked this very kiosk within the hour.
"""
from __future__ import annotations

import re
import time

from kiosk import api
from hub import inputs
from hub.profile import ALL_BRANDS
from hub.store import HubFailure, HubStore, token_hash

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_BATCH = 500
MAX_TAGS = 100  # a remove names the adds its kiosk had seen of one item
MAX_FIELDS = 16
MAX_STRING = 256
CREDENTIAL_KINDS = (api.CRED_TOKEN, api.CRED_UID, api.CRED_HCE, api.CRED_SUN)
BULK_KINDS = (api.CRED_TOKEN, api.CRED_UID)  # checked by keyed hash, in bulk
PRESENT_S = HubStore.SESSION_TTL_S  # a check-in this recent shows the shopper at the kiosk
NO_PROOF = "the event carries no proof of whose it is (a credential, a check-in or a session)"


class Rejected(Exception):
    """An event refused; its text is the reason the kiosk is told."""


class Batch:
    """What one batch knows as it goes: the check-ins it accepted (event id -> shopper), which
    its later events may point at, and which count as "the shopper is present" for consent."""

    def __init__(self) -> None:
        self.checkins: dict[str, str] = {}


def malformed(event) -> dict | None:
    """What can be refused from the event alone (no database), before anything is written:
    shape, sizes, and a proof of the right form."""
    event_id = event.get("event_id") if isinstance(event, dict) else None
    if not isinstance(event_id, str) or not UUID_RE.fullmatch(event_id):
        return {"event_id": str(event_id)[:64], "status": api.REJECTED, "reason": "event_id must be a UUID"}
    kind = event.get("type")
    if kind not in api.EVENT_TYPES:
        return refuse(event_id, f"unknown event type {str(kind)[:40]!r}")
    try:
        _bounded(event)
        if kind in (api.SCAN, api.WISHLIST_ADD):
            gtin_of(event)
        elif kind == api.WISHLIST_REMOVE:
            tags_of(event)
        elif kind in (api.CONSENT_GRANT, api.CONSENT_REVOKE):
            from_brand_of(event)
        for proof in ("credential", "checkin", "session"):
            if proof in event and event[proof] is None:
                raise Rejected(f"{proof} is null: leave it out or give one")
        credential, checkin, session = event.get("credential"), event.get("checkin"), event.get("session")
        if credential is not None and (not isinstance(credential, dict) or credential.get("kind") not in CREDENTIAL_KINDS):
            raise Rejected("credential kind must be one of " + ", ".join(CREDENTIAL_KINDS) +
                           " (a keyed hash is not a credential)")
        if checkin is not None and (not isinstance(checkin, str) or not UUID_RE.fullmatch(checkin)):
            raise Rejected("checkin must be the event id of the visit's check-in")
        if session is not None and not isinstance(session, str):
            raise Rejected("session must be the token of a check-in session")
        if kind == api.CHECKIN and credential is None:
            raise Rejected("a check-in carries the credential it was made with")
        if not anonymous(event) and credential is None and checkin is None and session is None:
            raise Rejected(NO_PROOF)
        claimed = event.get("shopper_id")
        if claimed is not None and not isinstance(claimed, str):
            raise Rejected("shopper_id must be a string")
    except Rejected as exc:
        return refuse(event_id, str(exc))
    return None


def _bounded(event: dict) -> None:
    if len(event) > MAX_FIELDS:
        raise Rejected(f"an event has at most {MAX_FIELDS} fields")
    for key, value in event.items():
        if not isinstance(key, str) or len(key) > 32 or not inputs.safe(key):
            raise Rejected("field names are at most 32 plain characters")
        if isinstance(value, str) and (len(value) > MAX_STRING or not inputs.safe(value)):
            raise Rejected(f"field {key[:32]!r} is longer than {MAX_STRING} characters or holds control characters")
        if isinstance(value, dict):
            if key != "credential":
                raise Rejected("only a credential is an object")
            try:
                inputs.credential(value)
            except HubFailure as exc:
                raise Rejected(exc.detail) from None
        if isinstance(value, list) and (key != "tags" or len(value) > MAX_TAGS):
            raise Rejected(f"only tags is a list, of at most {MAX_TAGS}")


def refuse(event_id: str, reason: str) -> dict:
    return {"event_id": event_id, "status": api.REJECTED, "reason": reason[:300]}


def anonymous(event: dict) -> bool:
    """A product scan attached to nobody (no shopper, credential, visit or session named)."""
    return (event.get("type") == api.SCAN and not event.get("shopper_id")
            and not any(k in event for k in ("credential", "checkin", "session")))


def in_run(event: dict) -> bool:
    """Whose an event is can be checked in bulk: no one-time proof to consume."""
    credential = event.get("credential")
    return credential is None or credential.get("kind") in BULK_KINDS


class Proofs:
    """The proofs a run names, looked up in one trip: credentials by keyed hash, check-ins this
    device had accepted, this device's live sessions."""

    def __init__(self, by_hash: dict, checkins: dict, sessions: dict, batch: Batch) -> None:
        self.by_hash, self.checkins, self.sessions, self.batch = by_hash, checkins, sessions, batch

    def owner(self, event: dict, digest: str | None) -> tuple[str, bool]:
        """(shopper id, present): whose the event is, and whether the shopper was shown to be
        at the kiosk with it (a credential, a live session, a check-in in this same batch)."""
        credential, checkin, session = event.get("credential"), event.get("checkin"), event.get("session")
        found: list[tuple[str, bool]] = []
        if credential is not None:
            shopper_id = self.by_hash.get(digest) if digest else None
            if shopper_id is None:
                raise Rejected("this card or phone is not registered")
            found.append((shopper_id, True))
        if checkin is not None:
            if checkin in self.batch.checkins:
                found.append((self.batch.checkins[checkin], True))
            elif checkin in self.checkins:
                shopper_id, received_at = self.checkins[checkin]
                found.append((shopper_id, received_at > time.time() - PRESENT_S))
            else:
                raise Rejected("the visit's check-in was not accepted")
        if session is not None:
            shopper_id = self.sessions.get(token_hash(session))
            if shopper_id is None:
                if checkin is None:
                    raise Rejected("this check-in session has ended")
            else:
                found.append((shopper_id, True))
        if not found:
            raise Rejected(NO_PROOF)
        owners = {shopper_id for shopper_id, _ in found}
        claimed = event.get("shopper_id")
        if len(owners) > 1 or (claimed and claimed not in owners):
            raise Rejected("the event's proofs name another shopper than the kiosk's cached view")
        return owners.pop(), any(present for _, present in found)


def check_type(event: dict, present: bool, staff: set) -> None:
    """What an event type needs beyond its owner."""
    kind = event["type"]
    if kind in (api.CONSENT_GRANT, api.CONSENT_REVOKE) and not present:
        raise Rejected("a sharing change needs the shopper at the kiosk (a live session or a check-in "
                       "of the last 15 minutes)")
    if kind == api.STAFF_LOOKUP and event.get("staff_id") not in staff:
        raise Rejected("staff_lookup needs a staff member of this kiosk's brand who unlocked it in the last hour")


# A staff lookup names a staff member of this kiosk's brand (and store) who unlocked staff mode
# on this very kiosk within the hour (staff mode needs the hub: it cannot be unlocked offline).
STAFF_SQL = ("SELECT r.staff_id, t.role FROM staff_roles r JOIN staff_sessions t ON t.staff_id = r.staff_id "
             "WHERE t.device_id=? AND t.expires_at>? AND r.brand_id=? AND (r.store_id='' OR r.store_id=?) "
             "AND r.staff_id IN (?*)")
STAFF_RECENT_S = 3600
# A check-in proves its visit's events for a week after the hub received it (a kiosk offline
# that long still attaches its queued visit); past that, a new tap proves the shopper again.
CHECKIN_PROOF_S = 7 * 24 * 3600


def gtin_of(event: dict) -> str:
    gtin = event.get("gtin")
    if not isinstance(gtin, str) or len(gtin) != 14 or not gtin.isascii() or not gtin.isdigit():
        raise Rejected("gtin must be 14 digits")
    return gtin


def tags_of(event: dict) -> list[str]:
    tags = event.get("tags")
    if not isinstance(tags, list) or not all(isinstance(t, str) and UUID_RE.fullmatch(t) for t in tags):
        raise Rejected("tags must be the list of add event ids the remover had seen")
    if len(tags) > MAX_TAGS:
        raise Rejected(f"a remove names at most {MAX_TAGS} tags")
    return tags


def from_brand_of(event: dict) -> str:
    from_brand = event.get("from_brand", ALL_BRANDS)
    if not isinstance(from_brand, str) or not from_brand or len(from_brand) > 64:
        raise Rejected("from_brand must be a brand id or '*'")
    return from_brand
