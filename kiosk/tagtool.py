"""Technician tag tools: what a tag holds, in words a technician can read (the reader test
on the technician screen and `kiosk tag read`), and the NDEF messages `kiosk tag write` puts
on shopper cards and product tags. Shopper tokens are masked in everything shown.

    info = describe(read, id_host)
    message = product_message("9506000134352")
"""
from __future__ import annotations

from urllib.parse import urlsplit

import ndef

from drivers.base import TagRead
from kiosk.identity import ProductTap, ShopperTap, classify, digital_link, shopper_uri


def _mask(token: str) -> str:
    return token[:4] + "…" if len(token) > 4 else "…"


def _mask_uri(uri: str, id_host: str) -> str:
    parts = urlsplit(uri)
    if (parts.hostname or "").lower() == id_host.lower() and parts.path.startswith("/s/"):
        return f"https://{parts.hostname}/s/{_mask(parts.path[3:])}"
    if parts.query:
        return uri.split("?", 1)[0] + "?…"
    return uri


def ndef_lines(message: bytes, id_host: str) -> list[str]:
    """Each NDEF record as one line a technician can read (shopper tokens masked)."""
    try:
        records = list(ndef.message_decoder(message, errors="relax"))
    except Exception as exc:  # hostile bytes end here as a line, never as a crash
        return [f"undecodable NDEF ({type(exc).__name__})"]
    lines = []
    for record in records[:8]:
        if isinstance(record, ndef.UriRecord):
            lines.append(f"URI {_mask_uri(record.iri, id_host)}")
        elif isinstance(record, ndef.TextRecord):
            lines.append(f"Text [{record.language}] {record.text[:80]}")
        elif isinstance(record, ndef.SmartposterRecord):
            lines.append(f"Smart poster {_mask_uri(record.resource.iri, id_host) if record.resource else ''}")
        else:
            lines.append(f"{record.type} ({len(record.data)} bytes)")
    return lines or ["empty NDEF message"]


def describe(read: TagRead, id_host: str) -> dict:
    """What a reader test shows for one read: technology, UID, timing, meaning, records."""
    tap = classify(read, id_host)
    if isinstance(tap, ProductTap):
        meaning, detail = "product", tap.gtin
    elif isinstance(tap, ShopperTap):
        cred = tap.credential
        meaning = "phone" if cred.kind == "hce" else "card"
        wire = dict(cred.wire)
        detail = f"{cred.kind} {_mask(wire.get('token') or wire.get('uid') or wire.get('credential_id') or '')}"
    else:
        meaning, detail = ("hold_still" if tap.retry else "unreadable"), tap.reason
    return {"technology": read.technology, "tag_type": read.tag_type, "uid": read.uid.hex().upper() if read.uid else "",
            "read_ms": round(read.read_ms, 1), "meaning": meaning, "detail": detail,
            "records": tuple(ndef_lines(read.ndef, id_host)) if read.ndef is not None else ()}


def uri_message(uri: str) -> bytes:
    return b"".join(ndef.message_encoder([ndef.UriRecord(uri)]))


def shopper_card_message(token: str, id_host: str) -> bytes:
    """The NDEF message of a shopper card (`https://<id host>/s/<token>`)."""
    return uri_message(shopper_uri(token, id_host))


def product_message(gtin: str, host: str = "id.gs1.org") -> bytes:
    """A product tag: the GS1 Digital Link URI of a GTIN (check digit verified)."""
    return uri_message(digital_link(gtin, host))
