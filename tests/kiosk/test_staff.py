"""Technician PIN (hashed, locked after repeated wrong tries, across restarts), device
settings, and what the reader test shows (shopper tokens masked)."""
import json
import os

import ndef
import pytest

from drivers.base import MOVED, TYPE2, TagRead
from kiosk.config import load_config
from kiosk.staff import DeviceSettings, PinLock, PinLocked, hash_pin, verify_pin
from kiosk.tagtool import describe


def test_pin_hash_is_salted_scrypt_and_verifies_only_the_pin():
    stored = hash_pin("2468")
    assert stored.startswith("scrypt:16384:8:1$") and "2468" not in stored
    assert hash_pin("2468") != stored
    assert verify_pin("2468", stored) and not verify_pin("2469", stored)
    assert not verify_pin("2468", "md5$x$y") and not verify_pin("2468", "garbage")


def test_a_staff_pin_is_six_to_twelve_ascii_digits():
    from kiosk.pins import PIN_MIN_DIGITS, valid_pin
    assert PIN_MIN_DIGITS == 6
    assert valid_pin("246813") and valid_pin("123456789012")
    for pin in ("1234", "12345", "1234567890123", "١٢٣٤٥٦", "１２３４５６", "12345a", "123456\n", "", None, 123456):
        assert not valid_pin(pin), repr(pin)


def test_five_wrong_pins_lock_for_five_minutes_even_after_a_restart(tmp_path):
    now = [1000.0]
    stored = hash_pin("2468")
    path = tmp_path / "pin-lock.json"
    lock = PinLock(path, clock=lambda: now[0])
    assert [lock.check("0000", stored) for _ in range(4)] == [False] * 4
    assert lock.tries_left() == 1
    with pytest.raises(PinLocked) as locked:
        lock.check("0000", stored)
    assert locked.value.seconds == 300
    restarted = PinLock(path, clock=lambda: now[0])
    with pytest.raises(PinLocked):
        restarted.check("2468", stored)  # the right PIN does not open a locked kiosk
    now[0] += 301
    assert restarted.check("2468", stored)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


def test_device_settings_win_over_the_file_and_are_validated(tmp_path):
    config = load_config(tmp_path / "none.toml", environ={}, overrides={"data_dir": tmp_path})
    settings = DeviceSettings(tmp_path / "settings.json")
    new = settings.save(config, language="th", idle_warning_s=25, idle_timeout_s=40)
    assert (new.language, new.idle_warning_s, new.idle_timeout_s) == ("th", 25.0, 40.0)
    assert settings.apply(config).language == "th"
    with pytest.raises(ValueError):
        settings.save(config, idle_warning_s=50, idle_timeout_s=40)
    with pytest.raises(ValueError):
        settings.save(config, hub_url="http://evil")
    (tmp_path / "settings.json").write_text(json.dumps({"language": "xx", "idle_timeout_s": "soon"}))
    assert settings.apply(config) == config  # a damaged file never breaks the start


def uri_read(uri):
    return TagRead("t", TYPE2, uid=bytes.fromhex("04aabbccddeeff"), ndef=b"".join(
        ndef.message_encoder([ndef.UriRecord(uri), ndef.TextRecord("hello", "en")])), read_ms=12.34)


def test_reader_test_describes_tags_and_masks_shopper_tokens():
    product = describe(uri_read("https://id.gs1.org/01/08931000000009"), "id.nfc-kiosk.dev")
    assert product["meaning"] == "product" and product["detail"] == "08931000000009"
    assert product["records"] == ("URI https://id.gs1.org/01/08931000000009", "Text [en] hello")
    assert product["uid"] == "04AABBCCDDEEFF" and product["read_ms"] == 12.3
    token = "D4HYgMT9jY7748gCKgkyNLtN"
    card = describe(uri_read(f"https://id.nfc-kiosk.dev/s/{token}"), "id.nfc-kiosk.dev")
    assert card["meaning"] == "card" and token not in repr(card) and "D4HY…" in card["detail"]
    moved = describe(TagRead("t", TYPE2, problem=MOVED), "id.nfc-kiosk.dev")
    assert moved["meaning"] == "hold_still"
    junk = describe(TagRead("t", TYPE2, uid=b"\x04" * 7, ndef=b"\xd1\x01\x01\xff"), "id.nfc-kiosk.dev")
    assert junk["meaning"] in ("unreadable", "card") and junk["records"]
