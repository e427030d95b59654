"""What the ``pcsc`` backend says to one card: the UID, the phone / Type 4 / Type 2 / UID-only
read, the NDEF write, and the ISO 7816-4 answers that ask for a resend or a GET RESPONSE.

    transceive = transceiver(send)                  # send(apdu) -> rapdu, e.g. through a Link
    read = identify(transceive, Attempt(timings={}), atr, "pcsc", kiosk_id="dev-42")

Functions over a `transceive(apdu: bytes) -> bytes` that returns the response APDU with
SW1 SW2. They neither import pyscard nor open, time or close anything: `drivers.pcsc_reader`
connects the card through a `drivers.pcsc_link.Link`, and whatever `transceive` raises (the
card left, went silent, pcscd went away) passes through untouched. This module never logs
UIDs, NDEF contents or credentials.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

from drivers import hce, ndef_apdu
from drivers.base import HCE, MALFORMED, TYPE2, TYPE4, UID_ONLY, UNSUPPORTED, ReaderError, TagRead

log = logging.getLogger(__name__)


@dataclass
class Attempt:
    """How far a read got, for the TagRead that reports a failure; per-step timings.

        attempt = Attempt(timings={})
        with attempt.step("type4", TYPE4): ...        # attempt.timings["type4_ms"]
    """

    technology: str = UID_ONLY
    uid: bytes | None = None
    timings: dict | None = None

    @contextlib.contextmanager
    def step(self, name: str, technology: str | None = None):
        self.technology = technology or self.technology
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[f"{name}_ms"] = (time.perf_counter() - started) * 1000


def transceiver(send):
    """`send(apdu) -> rapdu`, plus the ISO 7816-4 follow-ups: a wrong Le (6Cxx) is resent
    with the Le the card asked for, and T=0's 61xx answers are collected by GET RESPONSE."""
    def transceive(apdu: bytes) -> bytes:
        rapdu = send(apdu)
        if rapdu[-2] == 0x6C and len(apdu) in (5, 6 + apdu[4]):  # wrong Le: resend with SW2
            rapdu = send(apdu[:-1] + rapdu[-1:])
        data = rapdu[:-2]
        while rapdu[-2] == 0x61 and len(data) <= ndef_apdu.MAX_NDEF_BYTES:  # T=0: GET RESPONSE
            rapdu = send(bytes([0x00, 0xC0, 0x00, 0x00, rapdu[-1]]))
            data += rapdu[:-2]
        return data + rapdu[-2:]
    return transceive


def get_uid(transceive) -> bytes | None:
    """The UID by PC/SC part 3's GET DATA; None when the reader has none (6A81 on contact readers)."""
    rapdu = transceive(b"\xff\xca\x00\x00\x00")
    if rapdu[-2:] == b"\x90\x00" and 1 <= len(rapdu) - 2 <= 10:
        return rapdu[:-2]
    log.debug("no UID from the reader (%s)", rapdu[-2:].hex())
    return None


def identify(transceive, attempt: Attempt, atr: bytes, spec: str, kiosk_id: str) -> TagRead:
    """Phone, then Type 4, then Type 2, then UID only; a storage-card ATR skips ISO-DEP."""
    storage = ndef_apdu.storage_card(atr)
    uid = attempt.uid
    if storage is None:
        with attempt.step("hce", HCE):
            try:
                answer = hce.exchange(transceive, kiosk_id)
                return TagRead(spec, HCE, uid, hce=answer, tag_type="phone (HCE)")
            except hce.NotOurApp as exc:
                log.debug("not the kiosk app: %s", exc)
            except hce.HceError as exc:
                return TagRead(spec, HCE, uid, problem=MALFORMED, detail=str(exc), tag_type="phone (HCE)")
        with attempt.step("type4", TYPE4):
            try:
                content = ndef_apdu.read_type4(transceive)
                return TagRead(spec, TYPE4, uid, ndef=content.ndef,
                               tag_type=f"NFC Forum Type 4 (mapping {content.version})")
            except ndef_apdu.NoNdefApp as exc:
                log.debug("no NDEF application: %s", exc)
    if storage is None or storage[1]:
        with attempt.step("type2", TYPE2):
            try:
                content = ndef_apdu.read_type2(transceive)
                return TagRead(spec, TYPE2, uid, ndef=content.ndef,
                               tag_type=storage[0] if storage else "NFC Forum Type 2")
            except ndef_apdu.NoNdefApp as exc:
                log.debug("no Type 2 memory: %s", exc)
    attempt.technology = UID_ONLY
    if uid is None:
        return TagRead(spec, UID_ONLY, problem=UNSUPPORTED, detail="no UID, no NDEF, not the kiosk app")
    return TagRead(spec, UID_ONLY, uid, tag_type=storage[0] if storage else "ISO 14443")


def write(transceive, attempt: Attempt, atr: bytes, spec: str, message: bytes, lock: bool) -> TagRead:
    """Write `message` (Type 4 over ISO-DEP, else Type 2), lock the tag when `lock`, and
    return the TagRead of the tag's new content. Raises ReaderError when it cannot take it."""
    storage = ndef_apdu.storage_card(atr)
    if storage is not None and not storage[1]:
        raise ReaderError(f"cannot write this tag: {storage[0]} holds no NDEF")
    try:
        with attempt.step("write", TYPE4 if storage is None else TYPE2):
            technology, content = ndef_apdu.write_ndef(transceive, message, lock, iso_dep=storage is None)
    except (ndef_apdu.TagReadOnly, ndef_apdu.TagTooSmall, ndef_apdu.NoNdefApp) as exc:
        raise ReaderError(f"cannot write this tag: {exc}") from exc
    return TagRead(spec, technology, attempt.uid, ndef=content.ndef,
                   tag_type=storage[0] if storage else f"NFC Forum Type {technology[-1]}")
