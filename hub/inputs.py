"""Strict input rules shared by the hub's doors: text that may reach a screen, a log or a
database is refused (422, a clear reason) when it holds control or bidi characters, and
numbers that travel as text (cursors) are plain ASCII digits within a database integer.

    name = inputs.text(body.name, "name", 80)
    since = inputs.cursor(since)
"""
from __future__ import annotations

import re

from kiosk import api
from hub.store import HubFailure

# C0 and C1 controls, DEL, the bidi embeddings, overrides, isolates and marks that can make a
# name or a search term read differently on a screen than it is stored, and lone surrogates
# (JSON can carry them; no encoder or database takes them).
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
CURSOR = re.compile(r"[0-9]{1,18}")


def invalid(detail: str) -> HubFailure:
    return HubFailure(api.P_INVALID, detail, 422)


def safe(value: str) -> bool:
    return UNSAFE.search(value) is None


def text(value: str, field: str, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise invalid(f"{field} must be text of at most {limit} characters")
    if not safe(value):
        raise invalid(f"{field} holds control or bidi characters")
    return value


def credential(wire) -> dict:
    """A credential object as it arrives: at most 8 fields, short plain text values."""
    if not isinstance(wire, dict) or len(wire) > 8 or not all(
            isinstance(k, str) and len(k) <= 32 and safe(k) and isinstance(v, str) and len(v) <= 2048 and safe(v)
            for k, v in wire.items()):
        raise invalid("credential must be an object of at most 8 short plain text fields")
    return wire


def cursor(value: str) -> int:
    """A cursor returned by a delta call: empty (from the start) or ASCII digits in int64."""
    if not value:
        return 0
    if not CURSOR.fullmatch(value):
        raise invalid("since must be a cursor returned by this call")
    return int(value)
