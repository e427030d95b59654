"""One activated nfcpy tag -> one `TagRead`: reading and writing NDEF per tag type.

    read = nfcpy_tags.read(tag, spec="nfcpy:usb", kiosk_id="dev-42")
    read = nfcpy_tags.write(tag, "nfcpy:usb", message, lock=False, read_back=reader_read)

| tag | read | write / lock |
| --- | --- | --- |
| Type 2 (NTAG21x, Ultralight) | nfcpy READ under `drivers.ndef_apdu`'s CC + TLV walk | `ndef_apdu.write_type2`; nfcpy `tag.protect()` |
| Type 3 (FeliCa) | system 12FC, attribute block + read without encryption | not supported |
| Type 4 | `drivers.ndef_apdu` over ISO-DEP | `ndef_apdu.write_type4`; CC write-access byte |
| phone (HCE) | SELECT kiosk AID + signed challenge (`drivers.hce`), else Type 4 NDEF | as Type 4 |

nfcpy's errors are translated here: a tag that left the field gives `MOVED`, a tag that
breaks its own specification `MALFORMED` with the reason; an `OSError` (the reader
itself failed) passes through for the caller's reopen. These are functions of a tag the
caller already holds: they never open a frontend, poll, start threads or keep state,
and never log UIDs, NDEF contents or credentials.
"""
from __future__ import annotations

import logging

try:
    import nfc
    import nfc.clf
    import nfc.tag
    from nfc.tag import tt2, tt3, tt4
except ImportError:  # reported by drivers.nfcpy_reader.init()
    nfc = None

from drivers import hce, ndef_apdu
from drivers.base import (
    HCE, MALFORMED, MAX_NDEF_BYTES, MOVED, TYPE2, TYPE3, TYPE4, UID_ONLY, UNSUPPORTED,
    ReaderError, TagRead,
)
from drivers.nfcpy_ndef import framing_problem

log = logging.getLogger(__name__)


class Moved(Exception):
    """The tag left the field."""


class Malformed(Exception):
    """The tag answered something that breaks its own specification."""


def product(tag) -> str:
    product = tag.product
    return product[4:] if product.startswith("NXP ") else product


def command_failed(tag, exc: Exception) -> Exception:
    """Translate an nfcpy tag error: a timeout is a tag that left; a garbled frame is
    checked against the tag's presence; a status the tag chose to send is its fault."""
    code = getattr(exc, "errno", None)
    if isinstance(exc, nfc.tag.TagCommandError) and code is not None and code > 0:
        return Malformed(f"the tag refused a command ({exc})")
    if code == nfc.tag.TIMEOUT_ERROR or isinstance(exc, nfc.clf.TimeoutError):
        return Moved(str(exc))
    try:
        present = tag.is_present
    except nfc.clf.CommunicationError:
        present = False
    return Malformed(f"the tag broke the protocol ({exc})") if present else Moved(str(exc))


def type2_link(tag):
    """nfcpy's Type 2 READ/WRITE behind the PC/SC storage-card pseudo-APDUs that
    `drivers.ndef_apdu` speaks (`FF B0 00 p 10`, `FF D6 00 p 04`), failures translated."""
    def transceive(apdu: bytes) -> bytes:
        try:
            if apdu[1] == 0xB0:
                return bytes(tag.read(apdu[3])) + ndef_apdu.SW_OK
            tag.write(apdu[3], apdu[5:9])
            return ndef_apdu.SW_OK
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as exc:
            raise command_failed(tag, exc) from exc
    return transceive


def apdu_link(tag):
    """`transceive(apdu) -> response APDU` over nfcpy's ISO-DEP, failures translated."""
    def transceive(apdu: bytes) -> bytes:
        try:
            return bytes(tag.transceive(apdu) or b"")
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as exc:
            raise command_failed(tag, exc) from exc
    return transceive


def read_type3(tag) -> bytes | None:
    """NDEF of a Type 3 tag (T3T 1.0): attribute block 0, then blocks 1.. in NBr steps."""
    if tag.sys != 0x12FC:
        try:
            tag.idm, tag.pmm = tag.polling(0x12FC)[:2]
            tag.sys = 0x12FC
        except tt3.Type3TagCommandError as exc:
            if tag.is_present:
                return None  # no NDEF system on this card
            raise Moved(str(exc)) from exc
    attributes = bytes(tag.read_from_ndef_service(0))
    if sum(attributes[:14]) != int.from_bytes(attributes[14:16], "big"):
        raise Malformed("the NDEF attribute block fails its checksum")
    version, nbr, nmaxb = attributes[0], attributes[1], int.from_bytes(attributes[3:5], "big")
    writing, length = attributes[9], int.from_bytes(attributes[11:14], "big")
    if version >> 4 != 1:
        raise Malformed(f"unsupported Type 3 mapping version {version >> 4}.{version & 15}")
    if not nbr:
        raise Malformed("the attribute block allows no block per read")
    if writing == 0x0F:
        raise Malformed("an earlier write to the tag was interrupted")
    if length > MAX_NDEF_BYTES:
        raise Malformed(f"NDEF message of {length} bytes exceeds the {MAX_NDEF_BYTES}-byte limit")
    if length > nmaxb * 16:
        raise Malformed(f"NDEF length {length} exceeds the tag's {nmaxb * 16}-byte data area")
    blocks, step, data = (length + 15) // 16, min(nbr, 15), bytearray()
    for first in range(1, blocks + 1, step):
        data += tag.read_from_ndef_service(*range(first, min(first + step, blocks + 1)))
    return bytes(data[:length])


def content(tag, kiosk_id: str, found: dict) -> dict:
    """What the tag holds; `found` carries the technology so far for the error paths."""
    if isinstance(tag, tt2.Type2Tag):
        found["technology"] = TYPE2
        ndef = ndef_apdu.read_type2(type2_link(tag)).ndef
    elif isinstance(tag, tt3.Type3Tag):
        found["technology"] = TYPE3
        ndef = read_type3(tag)
    elif isinstance(tag, tt4.Type4Tag):
        found["technology"] = TYPE4
        transceive = apdu_link(tag)
        try:
            return {"technology": HCE, "hce": hce.exchange(transceive, kiosk_id)}
        except hce.NotOurApp:
            pass  # a tag, or a phone without the app: read it as a Type 4 tag
        try:
            ndef = ndef_apdu.read_type4(transceive).ndef
        except ndef_apdu.NoNdefApp:
            ndef = None
    else:
        return found
    if ndef is None:
        uid = bytes(tag.identifier)
        if len(uid) == 4 and uid[0] == 0x08:  # a random UID: worthless as a credential
            return {"technology": UID_ONLY, "problem": UNSUPPORTED,
                    "detail": "this phone has no kiosk app (its serial number changes every tap)"}
        return {"technology": UID_ONLY}
    if reason := framing_problem(ndef):
        raise Malformed(reason)
    return {"technology": found["technology"], "ndef": ndef}


def read(tag, spec: str, kiosk_id: str) -> TagRead:
    """The tag's `TagRead` (no timings); never raises but for `OSError` (the reader failed)."""
    found = {"technology": UID_ONLY}
    try:
        try:
            found = content(tag, kiosk_id, found)
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as exc:
            raise command_failed(tag, exc) from exc
    except Moved:
        found.update(problem=MOVED, detail="the tag moved away during the read")
    except (Malformed, ndef_apdu.MalformedTag, hce.HceError) as exc:
        found.update(problem=MALFORMED, detail=str(exc))
    except OSError:
        raise  # the reader itself failed: nfcpy's connect() turns this into a reopen
    except Exception as exc:  # nfcpy choking on a hostile tag must not take the reader down
        log.exception("unexpected failure reading a %s tag", product(tag))
        found.update(problem=MALFORMED,
                     detail=f"the tag's answer could not be parsed ({type(exc).__name__})")
    return TagRead(reader=spec, uid=bytes(tag.identifier), tag_type=product(tag), **found)


def write(tag, spec: str, message: bytes, lock: bool, read_back) -> TagRead:
    """Write `message` (and lock), then verify with `read_back(tag) -> TagRead`. A tag
    pulled mid-write gives a `MOVED` read; anything else that fails is a `ReaderError`."""
    if isinstance(tag, tt2.Type2Tag):
        technology, write_ndef, link = TYPE2, ndef_apdu.write_type2, type2_link(tag)
    elif isinstance(tag, tt4.Type4Tag):
        technology, write_ndef, link = TYPE4, ndef_apdu.write_type4, apdu_link(tag)
    else:
        raise ReaderError(f"writing {product(tag)} tags is not supported: use a Type 2 or Type 4 tag")
    try:
        try:
            write_ndef(link, message, lock and technology != TYPE2)
            # nfcpy's protect() also sets an NTAG's CFGLCK, so no password can be set later
            if lock and technology == TYPE2 and not tag.protect():
                raise ReaderError("the message was written but the tag could not be locked")
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as exc:
            raise command_failed(tag, exc) from exc
    except Moved:
        return TagRead(spec, technology, uid=bytes(tag.identifier), tag_type=product(tag),
                       problem=MOVED, detail="the tag moved away during the write: write it again")
    except ndef_apdu.TagReadOnly as exc:
        raise ReaderError(f"the tag is read-only or cannot be locked: {exc}") from exc
    except ndef_apdu.TagTooSmall as exc:
        raise ReaderError(f"the message does not fit: {exc}") from exc
    except (ndef_apdu.NdefApduError, Malformed) as exc:
        raise ReaderError(f"the tag cannot take this NDEF message: {exc}") from exc
    read = read_back(tag)
    if read.problem is None and read.ndef != message:
        raise ReaderError("the tag does not read back what was written")
    return read
