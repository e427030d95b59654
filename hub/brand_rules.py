"""Brand rules that need no database, so the store can use them without importing the brand
modules (which import the store): how an enrollment code is kept (its hash) and when an offer
is live (its window in the store's time zone).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import time
from zoneinfo import ZoneInfo

from kiosk import api


def code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode("utf-8", "surrogatepass")).hexdigest()


def window(valid_from: str, valid_until: str, timezone: str) -> tuple[float | None, float | None]:
    """An offer's [start, end) in unix time: a date is a whole day in the store's time zone
    (valid_until 2026-12-31 ends at midnight after it); a time without offset is local too."""
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ValueError, KeyError, OSError):
        zone = dt.timezone.utc

    return api.offer_moment(valid_from, zone, False), api.offer_moment(valid_until, zone, True)


def live(valid_from: str, valid_until: str, timezone: str, now: float | None = None) -> bool:
    start, end = window(valid_from, valid_until, timezone)
    now = time.time() if now is None else now
    return (start is None or start <= now) and (end is None or now < end)
