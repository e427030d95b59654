"""Each tag kind through nfcpy's real stack (udp transport) -> KioskService -> the hub on
loopback -> what the shopper sees."""
import pytest
import requests

import drivers
from drivers.hce_phone import Phone
from kiosk.app import build_service
from hub import demo
from kiosk.provisioning import load_identity
from kiosk.results import ErrorResult, ProductResult, ShopperResult
from kiosk.tagtool import product_message, shopper_card_message
from tests.emulators.nfc_udp import Felica, Ntag213, phone, type4_tag
from tests.kiosk.test_service import Results

CARD = shopper_card_message(demo.token_for(0), demo.ID_HOST)  # Emma


@pytest.fixture
def kiosk(field, enrolled):
    started = []

    def start(targets):
        device_id = load_identity(enrolled.device_file)[0].device_id
        service = build_service(enrolled, reader=drivers.open_reader(field.spec, kiosk_id=device_id,
                                                                       targets=targets))
        results = Results(service)
        service.start()
        started.append(service)
        return service, results

    yield start
    for service in started:
        service.stop()


@pytest.mark.parametrize("targets,make", [
    (["106A"], lambda: Ntag213(CARD)),
    (["106A", "212F"], lambda: Felica(CARD, idm=bytes.fromhex("03fe0102030405ff"))),
    (["106A"], lambda: type4_tag(CARD)),
], ids=["ntag213", "felica", "type4"])
def test_shopper_card_on_each_tag_type_greets_the_shopper(field, kiosk, targets, make):
    service, results = kiosk(targets)
    field.place(make())
    shown = results.next(ShopperResult)
    assert shown.view.display_name == "Emma" and len({i.brand for i in shown.view.wishlist}) >= 2
    field.remove()
    product = demo.products()[9]
    field.place(Ntag213(product_message(product["gtin"])))
    saved = results.next(ProductResult)
    assert saved.saved and saved.gtin == product["gtin"]


def test_phone_answers_the_challenge_and_the_hub_verifies_it(hub, field, kiosk):
    handset = Phone.generate("lan-phone")
    r = requests.post(hub.url + "/v1/shoppers/shopper-01/phone-keys", headers={"Authorization": "Bearer admin-test"},
                      json={"credential_id": "lan-phone", "public_key": handset.public_key_bytes().hex()}, timeout=5)
    assert r.status_code == 204
    service, results = kiosk(["106A"])
    field.place(phone(handset))
    assert results.next(ShopperResult).view.display_name == "Lan"
    field.remove()
    stranger = Phone.generate("lan-phone")  # same id, another key: a cloned app
    field.place(phone(stranger))
    assert results.next(ErrorResult).code == "refused"


def test_pulled_tag_asks_to_hold_still_and_hostile_ndef_is_unreadable(field, kiosk):
    service, results = kiosk(["106A"])
    field.place(Ntag213(CARD, vanish_after=1))
    assert results.next(ErrorResult).code == "hold_still"
    field.remove()
    hostile = b"\xd1\x01\x40\x55\x04" + b"x" * 10  # a record claiming 64 payload bytes, holding 10
    field.place(Ntag213(hostile))
    error = results.next(ErrorResult)
    assert error.code == "unreadable" and error.detail
    field.remove()
    field.place(Ntag213(CARD))  # the reader keeps working
    assert results.next(ShopperResult).view.display_name == "Emma"
