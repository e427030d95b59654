"""Tag classification over a table of real-world NDEF messages, good and hostile."""
import ndef
import pytest

from drivers.base import HCE, MOVED, TYPE2, UID_ONLY, HceAnswer, TagRead
from kiosk.identity import (ProductTap, ShopperTap, Unreadable, classify, digital_link, gtin_check_digit,
                            normalise_gtin)

HOST = "id.nfc-kiosk.dev"
TOKEN = "D4HYgMT9jY7748gCKgkyNLtN"


def msg(*records) -> bytes:
    return b"".join(ndef.message_encoder(list(records)))


def tag(message: bytes | None, uid=b"\x04\x11\x22\x33\x44\x55\x66") -> TagRead:
    return TagRead("test", TYPE2, uid=uid, ndef=message)


def test_shopper_card_uri():
    tap = classify(tag(msg(ndef.UriRecord(f"https://{HOST}/s/{TOKEN}"))), HOST)
    assert isinstance(tap, ShopperTap)
    assert tap.credential.to_wire() == {"kind": "token", "token": TOKEN}


def test_id_host_is_configurable():
    uri = f"https://cards.example.vn/s/{TOKEN}"
    assert isinstance(classify(tag(msg(ndef.UriRecord(uri))), "cards.example.vn"), ShopperTap)
    assert isinstance(classify(tag(msg(ndef.UriRecord(uri))), HOST), Unreadable)


def test_shopper_uri_inside_smart_poster_with_android_app_record():
    poster = ndef.SmartposterRecord(f"https://{HOST}/s/{TOKEN}", title="My card")
    aar = ndef.Record("urn:nfc:ext:android.com:pkg", "", b"dev.nfckiosk.app")
    tap = classify(tag(msg(aar, poster)), HOST)
    assert isinstance(tap, ShopperTap) and tap.credential.to_wire()["token"] == TOKEN


@pytest.mark.parametrize("uri,gtin", [
    ("https://id.gs1.org/01/09506000134352", "09506000134352"),           # GTIN-14
    ("https://shop.example.com/01/9506000134352?x=1", "09506000134352"),  # GTIN-13, any host
    ("https://example.com/dl/01/614141000036/10/LOT42", "00614141000036"),  # GTIN-12 + lot
    ("https://example.com/01/96385074", "00000096385074"),                 # GTIN-8
])
def test_product_digital_link(uri, gtin):
    tap = classify(tag(msg(ndef.UriRecord(uri))), HOST)
    assert tap == ProductTap(gtin=gtin, uri=uri)


def test_product_with_bad_check_digit_is_refused_with_reason():
    tap = classify(tag(msg(ndef.UriRecord("https://id.gs1.org/01/09506000134353"))), HOST)
    assert isinstance(tap, Unreadable) and "check digit" in tap.reason


def test_gtin_helpers():
    assert gtin_check_digit("950600013435") == 2
    assert normalise_gtin("9506000134352") == "09506000134352"
    assert normalise_gtin("12345") is None and normalise_gtin("９５０６０００１３４３５２") is None
    assert digital_link("96385074") == "https://id.gs1.org/01/00000096385074"


def test_uid_only_tag_and_empty_ndef_fall_back_to_uid():
    uid = bytes.fromhex("04a1b2c3d4e501")
    for read in (TagRead("t", UID_ONLY, uid=uid), tag(b"", uid=uid), tag(msg(ndef.TextRecord("hi")), uid=uid)):
        tap = classify(read, HOST)
        assert isinstance(tap, ShopperTap) and tap.credential.to_wire() == {"kind": "uid", "uid": uid.hex()}


def test_phone_answer_is_a_credential():
    answer = HceAnswer("cred-1", b"\x01" * 16, "dev-1", b"\x02" * 64)
    tap = classify(TagRead("t", HCE, hce=answer), HOST)
    assert isinstance(tap, ShopperTap) and tap.credential.needs_hub_verification
    assert tap.credential.to_wire()["signature"] == "02" * 64


def test_sun_url_uses_card_uid_for_identity():
    uri = f"https://{HOST}/c?picc_data=EF963FF7828658A599F3041510671E88&cmac=94EED9EE65337086"
    tap = classify(tag(msg(ndef.UriRecord(uri)), uid=bytes.fromhex("04de5f1eacc040")), HOST)
    assert isinstance(tap, ShopperTap) and tap.credential.kind == "sun"
    assert tap.credential.stable_id == "sun:04de5f1eacc040"


def test_moved_tag_asks_to_hold_still():
    tap = classify(TagRead("t", TYPE2, uid=b"\x04" * 7, problem=MOVED), HOST)
    assert tap == Unreadable("the tag moved away during the read", retry=True)


HOSTILE = [
    ("truncated record", bytes.fromhex("d101")),
    ("payload length lies", bytes.fromhex("d10101ff")),
    ("huge payload length", bytes.fromhex("c1010fffffff55")),
    ("no message end", bytes.fromhex("9101015500")),
    ("chunked without end", bytes.fromhex("b50101550068")),
    ("reserved TNF", bytes.fromhex("d7000000")),
    ("oversized message", msg(ndef.UriRecord("https://x.example/" + "a" * 9000))),
    ("URI with control characters", msg(ndef.UriRecord("https://id.gs1.org/01/\x00\x07"))),
    ("not a web link", msg(ndef.UriRecord("tel:+84123456789"))),
    ("garbage bytes", bytes(range(256))),
    ("shopper path with bad token", msg(ndef.UriRecord(f"https://{HOST}/s/short"))),
    ("someone else's shopper card", msg(ndef.UriRecord(f"https://evil.example/s/{TOKEN}"))),
]


@pytest.mark.parametrize("name,message", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_ndef_gives_a_reason_never_an_exception(name, message):
    tap = classify(tag(message, uid=None), HOST)
    assert isinstance(tap, Unreadable), name
    assert tap.reason and not tap.retry
