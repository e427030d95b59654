"""`kiosk tag read` / `kiosk tag write` as a technician runs them: a real `kiosk` process
driving nfcpy's real stack over its udp transport against the emulated field."""
import json
import os
import subprocess
import sys

from hub import demo
from kiosk.tagtool import product_message, shopper_card_message
from tests.emulators.nfc_udp import Ntag213, phone
from drivers.hce_phone import Phone


def kiosk(*args, data_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    return subprocess.run([sys.executable, "-m", "launch", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=60, env=env)


def test_write_a_product_tag_then_read_it(field, tmp_path):
    tag = Ntag213(shopper_card_message(demo.token_for(0), demo.ID_HOST))
    field.place(tag)
    gtin = demo.products()[0]["gtin"]
    written = kiosk("tag", "write", "--gtin", gtin[1:], "--reader", field.spec, "--timeout", "5", "--json",
                    data_dir=tmp_path)
    assert written.returncode == 0, written.stderr
    assert tag.ndef() == product_message(gtin)
    out = json.loads(kiosk("tag", "read", "--reader", field.spec, "--timeout", "5", "--json",
                           data_dir=tmp_path).stdout)
    assert out["meaning"] == "product" and out["detail"] == gtin
    assert out["uid"] == tag.uid.hex().upper() and out["technology"] == "type2"
    assert out["records"] == [f"URI https://id.gs1.org/01/{gtin}"]


def test_read_a_shopper_card_masks_the_token(field, tmp_path):
    token = demo.token_for(3)
    field.place(Ntag213(shopper_card_message(token, demo.ID_HOST)))
    result = kiosk("tag", "read", "--reader", field.spec, "--timeout", "5", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "card" in result.stdout and token[:4] in result.stdout and token not in result.stdout


def test_read_a_phone_and_refuse_a_bad_gtin(field, tmp_path):
    field.place(phone(Phone.generate("cred-cli-1")))
    out = json.loads(kiosk("tag", "read", "--reader", field.spec, "--timeout", "5", "--json",
                           data_dir=tmp_path).stdout)
    assert out["meaning"] == "phone" and out["technology"] == "hce"
    bad = kiosk("tag", "write", "--gtin", "9506000134353", "--reader", field.spec, data_dir=tmp_path)
    assert bad.returncode == 2 and "GTIN" in bad.stderr and "Traceback" not in bad.stderr


def test_no_tag_is_a_clear_timeout(field, tmp_path):
    result = kiosk("tag", "read", "--reader", field.spec, "--timeout", "1", data_dir=tmp_path)
    assert result.returncode == 1 and "no tag was presented" in result.stderr
