"""SUN message verification against the published AN12196 vectors, replay, garbage, sign side.

The crypto is never mocked: every test runs the real AES/CMAC from `cryptography`.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings, strategies as st

from hub.sun import (
    ENCRYPTED, ENCRYPTED_FILE, PLAIN, MemoryCounterStore, SunInvalid, SunLayout, SunMessage,
    SunReplay, SunUnknownCard, check_counter, make_sun_url, parse_sun_url, verify, verify_url,
)

VECTORS_NAME = "sun-vectors.json"
ZERO = bytes(16)
META = bytes.fromhex("42aff114f2cb3b6141be6dc95dfc5416")
FILE = bytes.fromhex("b62a9baf092439bd43c62aee96b970c5")
UID = bytes.fromhex("04A1B2C3D4E580")
BASE = "https://id.example.com/c"


def find_vectors() -> Path | None:
    """$KIOSK_SHARED_DIR/testdata/sun-vectors.json, else a `shared` dir beside any parent."""
    env = os.environ.get("KIOSK_SHARED_DIR")
    if env:
        return Path(env, "testdata", VECTORS_NAME)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "testdata" / VECTORS_NAME
        if candidate.is_file():
            return candidate
    return None


def load_vectors() -> list:
    path = find_vectors()
    if path is None or not path.is_file():
        # a missing vector file must fail the run, never skip it
        return [pytest.param(None, id=f"{VECTORS_NAME}-not-found")]
    vectors = json.loads(path.read_text(encoding="utf-8"))["vectors"]
    return [pytest.param(v, id=v["name"]) for v in vectors]


VECTORS = load_vectors()


def vector_layout(v: dict) -> SunLayout:
    return SunLayout(picc_param=v["picc_param"], cmac_param=v["cmac_param"], enc_param=v.get("enc_param"))


def vector_message(v: dict) -> SunMessage:
    """The vector as a SunMessage, through the URL parser wherever the vector has a URL."""
    if v["mode"] == "plain":
        url = f"{BASE}?uid={v['uid']}&ctr={v['counter_msb_first']}&cmac={v['cmac']}"
        return parse_sun_url(url, PLAIN)
    if "url" in v:
        return parse_sun_url(v["url"], vector_layout(v))
    return SunMessage(cmac=bytes.fromhex(v["cmac"]), mac_input=v["mac_input_ascii"].encode("ascii"),
                      picc_data=bytes.fromhex(v["picc_data"]), enc_file_data=bytes.fromhex(v["enc_file_data"]))


def vector_keys(v: dict) -> tuple[bytes | None, bytes]:
    meta = v.get("sdm_meta_read_key")
    return (bytes.fromhex(meta) if meta else None), bytes.fromhex(v["sdm_file_read_key"])


def require(v: dict | None) -> None:
    if v is None:
        pytest.fail(f"{VECTORS_NAME} not found: set KIOSK_SHARED_DIR or keep shared/ beside the repo")


def test_vector_file_is_found_and_complete():
    assert find_vectors() is not None, "set KIOSK_SHARED_DIR or keep shared/ beside the repo"
    assert len(VECTORS) >= 7
    assert {p.values[0]["mode"] for p in VECTORS} == {"plain", "encrypted"}


@pytest.mark.parametrize("v", VECTORS)
def test_published_vector(v):
    require(v)
    meta, file_key = vector_keys(v)
    expect = v["expect"]
    if not expect["valid"]:
        with pytest.raises(SunInvalid) as info:
            verify(vector_message(v), meta, file_key)
        assert not isinstance(info.value, (SunReplay, SunUnknownCard))
        assert info.value.reason
        return
    msg = vector_message(v)
    if "mac_input_ascii" in v:
        assert msg.mac_input == v["mac_input_ascii"].encode("ascii")
    result = verify(msg, meta, file_key)
    assert result.uid == bytes.fromhex(expect["uid"])
    assert result.counter == expect["counter"]
    data = expect.get("file_data_utf8", "").encode("utf-8") or bytes.fromhex(expect.get("file_data_hex", ""))
    assert result.file_data == (data or None)


def test_page_18_mac_input_runs_from_enc_value_through_cmac_equals():
    url = next(p.values[0]["url"] for p in VECTORS if "page 18: encrypted" in p.id)
    msg = parse_sun_url(url, ENCRYPTED_FILE)
    assert msg.mac_input == b"CEE9A53E3E463EF1F459635736738962&cmac="


URL_VECTORS = [p for p in VECTORS if p.values[0] and "url" in p.values[0]
               and p.values[0]["expect"]["valid"]] or VECTORS  # never an empty (skipped) set


@pytest.mark.parametrize("v", URL_VECTORS)
def test_sign_side_reproduces_published_url(v):
    """make_sun_url, given the PICC data's random bytes, writes exactly the card's URL."""
    require(v)
    meta, file_key = vector_keys(v)
    msg = parse_sun_url(v["url"], vector_layout(v))
    dec = Cipher(algorithms.AES(meta), modes.CBC(bytes(16))).decryptor()
    plain = dec.update(msg.picc_data) + dec.finalize()
    result = verify(msg, meta, file_key)
    url = make_sun_url(v["url"].split("?")[0], result.uid, result.counter, meta, file_key,
                       layout=vector_layout(v), file_data=result.file_data, picc_random=plain[11:])
    assert url == v["url"]


# -- round trips of the sign side ------------------------------------------------------------

@pytest.mark.parametrize("layout", [
    PLAIN, ENCRYPTED, ENCRYPTED_FILE,
    SunLayout(picc_param="e", cmac_param="c"),
    SunLayout(enc_param="enc", mac_from="picc_data"),
    SunLayout(picc_param=None, mac_from="uid"),
], ids=["plain", "encrypted", "encrypted+file", "short-names", "mac-from-picc", "plain-mac-from-uid"])
@pytest.mark.parametrize("counter", [0, 1, 291, 0xFFFFFF])
def test_make_sun_url_round_trip(layout, counter):
    data = b"loyalty:12345678" * 2
    url = make_sun_url(BASE, UID, counter, META, FILE, layout=layout, file_data=data)
    result = verify(parse_sun_url(url, layout), META, FILE)
    assert (result.uid, result.counter) == (UID, counter)
    assert result.file_data == (data if layout.enc_param else None)


def test_make_sun_url_keeps_an_existing_query_and_uses_uppercase_hex():
    url = make_sun_url(BASE + "?lang=en", UID, 5, META, FILE, layout=PLAIN)
    assert url.startswith(BASE + "?lang=en&uid=04A1B2C3D4E580&ctr=000005&cmac=")
    assert verify(parse_sun_url(url, PLAIN), None, FILE).counter == 5


@pytest.mark.parametrize("kwargs, message", [
    (dict(uid=b"\x04" * 6), "uid"),
    (dict(counter=0x1000000), "counter"),
    (dict(counter=-1), "counter"),
    (dict(base_url=BASE + "#x"), "fragment"),
    (dict(picc_random=b"1234"), "picc_random"),
    (dict(layout=ENCRYPTED_FILE, file_data=b"not 16 bytes"), "file_data"),
    (dict(layout=ENCRYPTED_FILE), "file_data"),
    (dict(meta_key=b"short"), "meta read key"),
])
def test_make_sun_url_refuses_bad_arguments(kwargs, message):
    args = dict(base_url=BASE, uid=UID, counter=1, meta_key=META, file_key=FILE) | kwargs
    with pytest.raises(ValueError, match=message):
        make_sun_url(**args)


def test_layout_refuses_clashing_names():
    with pytest.raises(ValueError):
        SunLayout(enc_param="picc_data")
    with pytest.raises(ValueError):
        SunLayout(mac_from="cmac")
    with pytest.raises(ValueError):
        SunLayout(cmac_param="")


# -- tampering -------------------------------------------------------------------------------

def _flip_hex_digit(url: str, param: str) -> str:
    start = url.index(param + "=") + len(param) + 1
    digit = url[start]
    return url[:start] + ("0" if digit != "0" else "1") + url[start + 1:]


@pytest.mark.parametrize("param", ["cmac", "picc_data", "enc"])
def test_tampered_message_is_refused(param):
    url = make_sun_url(BASE, UID, 7, META, FILE, layout=ENCRYPTED_FILE, file_data=bytes(16))
    with pytest.raises(SunInvalid) as info:
        verify(parse_sun_url(_flip_hex_digit(url, param), ENCRYPTED_FILE), META, FILE)
    assert not isinstance(info.value, SunReplay)


def test_tampered_cmac_in_plain_mode_and_changed_counter_are_refused():
    url = make_sun_url(BASE, UID, 7, None, FILE, layout=PLAIN)
    for bad in (_flip_hex_digit(url, "cmac"), url.replace("ctr=000007", "ctr=000008")):
        with pytest.raises(SunInvalid, match="MAC"):
            verify(parse_sun_url(bad, PLAIN), None, FILE)


def test_lowercased_url_is_refused_because_the_mac_covers_the_exact_text():
    url = make_sun_url(BASE, UID, 7, META, FILE, layout=ENCRYPTED_FILE, file_data=bytes(16))
    head, query = url.split("?")
    with pytest.raises(SunInvalid, match="MAC"):
        verify(parse_sun_url(head + "?" + query.lower(), ENCRYPTED_FILE), META, FILE)


def test_wrong_file_key_is_refused_and_unknown_card_is_told_apart():
    url = make_sun_url(BASE, UID, 7, META, FILE)
    with pytest.raises(SunInvalid, match="MAC"):
        verify(parse_sun_url(url), META, ZERO)
    with pytest.raises(SunUnknownCard, match="04A1B2C3D4E580"):
        verify(parse_sun_url(url), META, {}.get)
    assert verify(parse_sun_url(url), META, {UID: FILE}.get).uid == UID


def test_malformed_keys_are_a_configuration_error():
    msg = parse_sun_url(make_sun_url(BASE, UID, 7, META, FILE))
    with pytest.raises(ValueError):
        verify(msg, META[:15], FILE)
    with pytest.raises(ValueError):
        verify(msg, META, "00" * 16)


# -- replay ----------------------------------------------------------------------------------

def test_check_counter_rule():
    check_counter(None, 0)
    check_counter(5, 6)
    for last, counter in ((6, 6), (6, 5), (0xFFFFFF, 0)):
        with pytest.raises(SunReplay) as info:
            check_counter(last, counter)
        assert (info.value.last_seen, info.value.counter) == (last, counter)
        assert isinstance(info.value, SunInvalid)
    with pytest.raises(SunInvalid):
        check_counter(None, -1)


def _hub_verify(url: str, store: MemoryCounterStore, layout: SunLayout = ENCRYPTED):
    return verify_url(url, layout=layout, meta_read_keys=[META], file_read_key={UID: FILE}.get,
                      counters=store)


def test_replayed_url_is_refused():
    store = MemoryCounterStore()
    url = make_sun_url(BASE, UID, 10, META, FILE)
    assert _hub_verify(url, store).counter == 10
    assert store.last(UID) == 10
    with pytest.raises(SunReplay):
        _hub_verify(url, store)


def test_older_and_equal_counters_are_refused_newer_accepted():
    store = MemoryCounterStore({UID: 10})
    for counter in (9, 10):  # a fresh encryption of the same counter is still a replay
        with pytest.raises(SunReplay):
            _hub_verify(make_sun_url(BASE, UID, counter, META, FILE), store)
    assert _hub_verify(make_sun_url(BASE, UID, 11, META, FILE), store).counter == 11
    plain = make_sun_url(BASE, UID, 11, None, FILE, layout=PLAIN)
    with pytest.raises(SunReplay):
        _hub_verify(plain, store, PLAIN)


def test_invalid_message_does_not_advance_the_counter():
    store = MemoryCounterStore({UID: 10})
    bad = _flip_hex_digit(make_sun_url(BASE, UID, 50, META, FILE), "cmac")
    with pytest.raises(SunInvalid):
        _hub_verify(bad, store)
    assert store.last(UID) == 10


def test_same_url_in_parallel_passes_once():
    store = MemoryCounterStore()
    url = make_sun_url(BASE, UID, 3, META, FILE)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt():
        barrier.wait()
        try:
            _hub_verify(url, store)
            outcomes.append("ok")
        except SunReplay:
            outcomes.append("replay")

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert sorted(outcomes) == ["ok"] + ["replay"] * 7


def test_meta_key_rotation_tries_keys_in_order():
    url = make_sun_url(BASE, UID, 4, META, FILE)
    store = MemoryCounterStore()
    result = verify_url(url, layout=ENCRYPTED, meta_read_keys=[ZERO, META],
                        file_read_key={UID: FILE}.get, counters=store)
    assert result.counter == 4
    # a wrong meta key decrypts to noise: a bad PICC tag byte, or (1 in 256, the padding is random)
    # a well-formed UID no card has
    with pytest.raises(SunInvalid, match="PICC data|MAC|no SDM file read key"):
        verify_url(make_sun_url(BASE, UID, 5, META, FILE), layout=ENCRYPTED, meta_read_keys=[ZERO],
                   file_read_key={UID: FILE}.get, counters=store)
    with pytest.raises(ValueError):
        verify_url(url, layout=ENCRYPTED, meta_read_keys=[], file_read_key={UID: FILE}.get,
                   counters=store)


# -- garbage ---------------------------------------------------------------------------------

PICC = "EF963FF7828658A599F3041510671E88"
MAC = "94EED9EE65337086"


@pytest.mark.parametrize("url, reason", [
    (None, "not text"),
    (b"https://x/?picc_data=00&cmac=00", "not text"),
    (42, "not text"),
    ("", "no query"),
    ("https://x/c", "no query"),
    ("https://x/c?", "missing"),
    (f"https://x/c?picc_data={PICC}", "missing parameter.*cmac"),
    (f"https://x/c?cmac={MAC}", "missing parameter.*picc_data"),
    (f"https://x/c?picc_data={PICC}&cmac", "no value"),
    (f"https://x/c?picc_data={PICC}&cmac=", "16 hex digits"),
    (f"https://x/c?picc_data={PICC[:-2]}&cmac={MAC}", "32 hex digits"),
    (f"https://x/c?picc_data={PICC}00&cmac={MAC}", "32 hex digits"),
    (f"https://x/c?picc_data={PICC[:-1]}&cmac={MAC}", "not hexadecimal"),
    (f"https://x/c?picc_data={PICC[:-1]}G&cmac={MAC}", "not hexadecimal"),
    (f"https://x/c?picc_data={PICC[:-2]} 8&cmac={MAC}", "not hexadecimal"),
    (f"https://x/c?picc_data={PICC}&cmac=+{MAC[1:]}", "not hexadecimal"),
    (f"https://x/c?picc_data={PICC}&cmac=%39{MAC[2:]}", "not hexadecimal"),
    (f"https://x/c?picc_data={PICC}&picc_data={PICC}&cmac={MAC}", "more than once"),
    (f"https://x/c?picc_data={PICC}&cmac={MAC}#cmac=00", None),  # fragment ignored: valid
    (f"https://x/c#?picc_data={PICC}&cmac={MAC}", "no query"),
    (f"https://x/c?picc_data={PICC}&cmac={MAC}&x=" + "A" * 2000, "too long"),
    (f"https://x/c?picc_data={PICC}&cmac={MAC}&name=\u00e9", "non-ASCII"),
    (f"https://x/c?picc_data={PICC}&cmac={MAC}\n", "non-ASCII"),
])
def test_garbage_url_gives_sun_invalid(url, reason):
    if reason is None:
        assert verify(parse_sun_url(url), ZERO, ZERO).counter == 61
        return
    with pytest.raises(SunInvalid, match=reason):
        parse_sun_url(url)


@pytest.mark.parametrize("url, layout, reason", [
    ("https://x/c?uid=04DE5F1EACC040&ctr=00003D&cmac=" + MAC, ENCRYPTED, "missing"),
    ("https://x/c?uid=04DE5F1EACC0&ctr=00003D&cmac=" + MAC, PLAIN, "uid must be 14"),
    ("https://x/c?uid=04DE5F1EACC040&ctr=3D&cmac=" + MAC, PLAIN, "ctr must be 6"),
    (f"https://x/c?picc_data={PICC}&cmac={MAC}&enc=" + "00" * 16, ENCRYPTED_FILE, "must come before"),
    (f"https://x/c?picc_data={PICC}&enc=00&cmac={MAC}", ENCRYPTED_FILE, "16 to 256 bytes"),
    (f"https://x/c?picc_data={PICC}&enc=&cmac={MAC}", ENCRYPTED_FILE, "16 to 256 bytes"),
    (f"https://x/c?picc_data={PICC}&enc={'00' * 272}&cmac={MAC}", ENCRYPTED_FILE, "256 bytes"),
])
def test_garbage_fields_give_sun_invalid(url, layout, reason):
    with pytest.raises(SunInvalid, match=reason):
        parse_sun_url(url, layout)


@pytest.mark.parametrize("kwargs", [
    dict(cmac=b"short", picc_data=bytes(16)),
    dict(cmac="00" * 8, picc_data=bytes(16)),
    dict(cmac=bytes(8), picc_data=bytes(15)),
    dict(cmac=bytes(8)),
    dict(cmac=bytes(8), uid=bytes(7)),
    dict(cmac=bytes(8), uid=bytes(7), counter=True),
    dict(cmac=bytes(8), uid=bytes(7), counter=1 << 24),
    dict(cmac=bytes(8), picc_data=bytes(16), uid=bytes(7)),
    dict(cmac=bytes(8), picc_data=bytes(16), enc_file_data=bytes(17)),
    dict(cmac=bytes(8), picc_data=bytes(16), mac_input="text"),
])
def test_garbage_message_gives_sun_invalid(kwargs):
    with pytest.raises(SunInvalid):
        SunMessage(**kwargs)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.sampled_from([PLAIN, ENCRYPTED, ENCRYPTED_FILE]))
def test_any_text_gives_a_message_or_sun_invalid(text, layout):
    store = MemoryCounterStore()
    for url in (text, f"https://x/c?{text}", f"https://x/c?picc_data={PICC}&{text}"):
        try:
            verify_url(url, layout=layout, meta_read_keys=[ZERO], file_read_key=lambda uid: ZERO,
                       counters=store)
        except SunInvalid:
            pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=16, max_size=16), st.binary(min_size=8, max_size=8))
def test_random_picc_data_and_mac_are_refused(picc, mac):
    msg = SunMessage(cmac=mac, picc_data=picc)
    with pytest.raises(SunInvalid):
        verify(msg, ZERO, ZERO)
