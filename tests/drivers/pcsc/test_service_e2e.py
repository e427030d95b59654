"""Through pcscd + vpcd + pyscard -> KioskService -> the hub on loopback -> the result; the
technician's `kiosk tag` and `kiosk doctor` on the virtual reader."""
import json
import os
import subprocess
import sys

import pytest
import requests

import drivers
from drivers import hce
from drivers.hce_phone import Phone
from kiosk.app import build_service
from hub import demo
from kiosk.provisioning import load_identity
from kiosk.results import ErrorResult, ProductResult, ShopperResult
from kiosk.tagtool import product_message, shopper_card_message
from tests.emulators.type4 import Type4NdefCard
from tests.emulators.vpcd_card import UidOnlyCard, WritableType4
from tests.kiosk.test_service import Results

CARD = shopper_card_message(demo.token_for(0), demo.ID_HOST)  # Emma


@pytest.fixture
def kiosk(pcscd, enrolled):
    device_id = load_identity(enrolled.device_file)[0].device_id
    reader = drivers.open_reader(f"pcsc:{pcscd.READER}", kiosk_id=device_id, apdu_timeout=1.0)
    service = build_service(enrolled, reader=reader)
    results = Results(service)
    service.start()
    yield service, results
    service.stop()


def tap(pcscd, card, results, kind):
    card.insert()
    try:
        return results.next(kind)
    finally:
        card.remove()
        pcscd.wait_card(pcscd.READER, present=False)


def test_type4_card_phone_and_badge_through_the_service(hub, pcscd, cards, kiosk):
    service, results = kiosk
    shown = tap(pcscd, cards(Type4NdefCard(CARD)), results, ShopperResult)
    assert shown.view.display_name == "Emma" and len({i.brand for i in shown.view.wishlist}) >= 2
    product = demo.products()[12]
    saved = tap(pcscd, cards(Type4NdefCard(product_message(product["gtin"]))), results, ProductResult)
    assert saved.saved and saved.gtin == product["gtin"]
    service.end_session()

    handset = Phone.generate("lan-pcsc")
    requests.post(hub.url + "/v1/shoppers/shopper-01/phone-keys", headers={"Authorization": "Bearer admin-test"},
                  json={"credential_id": "lan-pcsc", "public_key": handset.public_key_bytes().hex()},
                  timeout=5).raise_for_status()
    phone_card = Type4NdefCard(b"", extra_apps={hce.AID: handset.process_apdu})
    assert tap(pcscd, cards(phone_card, uid=b"\x08\x01\x02\x03"), results, ShopperResult).view.display_name == "Lan"
    service.end_session()

    unknown = tap(pcscd, cards(UidOnlyCard(), uid=bytes.fromhex("04deadbeef0001")), results, ErrorResult)
    assert unknown.code == "unknown_card"


def kiosk_cli(*args, data_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    return subprocess.run([sys.executable, "-m", "launch", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=60, env=env)


def test_kiosk_tag_write_and_read_on_pcsc(pcscd, cards, tmp_path):
    blank = WritableType4()
    card = cards(blank)
    card.insert()
    try:
        gtin = demo.products()[3]["gtin"]
        written = kiosk_cli("tag", "write", "--gtin", gtin, "--reader", f"pcsc:{pcscd.READER}", "--timeout", "5",
                            data_dir=tmp_path)
        assert written.returncode == 0, written.stderr
        assert blank.message == product_message(gtin)
        out = json.loads(kiosk_cli("tag", "read", "--reader", f"pcsc:{pcscd.READER}", "--timeout", "5", "--json",
                                   data_dir=tmp_path).stdout)
        assert out["meaning"] == "product" and out["detail"] == gtin and out["technology"] == "type4"
    finally:
        card.remove()
        pcscd.wait_card(pcscd.READER, present=False)


def test_doctor_lists_the_virtual_reader_and_flags_vpcd(pcscd, tmp_path):
    result = kiosk_cli("doctor", "--json", "--reader", f"pcsc:{pcscd.READER}", data_dir=tmp_path)
    report = json.loads(result.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert pcscd.READER in checks["pcscd"]["summary"]
    assert checks["virtual-reader"]["status"] == "critical"  # vpcd listens on every interface
    assert result.returncode == 2
