"""A brand plugs in, end to end, as its people would do it: the operator creates the brand
with the CLI in a fresh hub (no demo world), the brand imports its stores, products (with
Thai titles), stock and offers from CSV files, a technician creates a one-time enrollment
code and enrolls a kiosk with it, and a Thai shopper taps: the kiosk shows the new products
in Thai, with stock and aisle, and the offer; the expired offer never shows; a stock delta
sent afterwards reaches the kiosk. Then the fleet: the code works once, the kiosk revoked is
refused at its next call and says so, and delivers its queued check-in after enrolling again.

Every part is real: the hub on a loopback port over SQLite, `kiosk hub ...` in-process, the
kiosk as a `kiosk` subprocess. The shopper is written into the hub's database directly: a
shopper's own door (their page) is the next issue's; nothing of the brand is."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys

import requests

from hub import cli
from hub.app import HubSettings
from hub.server import EmbeddedHub
from hub.store import HubStore
from kiosk.api import shopper_uri

THAI = re.compile("[\u0e00-\u0e7f]")
TOKEN = "thaishopper0000000000001"
G1, G2 = "8851234000012", "8851234000029"


def hub_cli(capsys, *argv):
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, out + err
    return out


def kiosk(*args, data_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    return subprocess.run([sys.executable, "-m", "launch", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=90, env=env)


def taps(result) -> list[dict]:
    assert "Traceback" not in result.stderr, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_a_brand_plugs_in_and_a_thai_shopper_sees_it_in_thai(tmp_path, capsys):
    db = tmp_path / "fresh.db"
    out = hub_cli(capsys, "brand", "create", "--db", str(db), "--id", "sunbkk", "--name", "Sun Bangkok", "--json")
    key = json.loads(out)["key"]
    shopper_card = shopper_uri(TOKEN, "id.nfc-kiosk.dev")
    store = HubStore(db)
    store.conn.execute("INSERT INTO shoppers(id, display_name, locale) VALUES ('s-th', 'นภา', 'th')")
    store.conn.execute("INSERT INTO credentials(hash, shopper_id, kind) VALUES (?, 's-th', 'token')",
                       (store.credential_hash(f"token:{TOKEN}"),))
    store.close()
    today = dt.date.today()
    files = {
        "stores.csv": "store_code,name,city,currency,timezone,languages\nbkk,Sun Siam Square,Bangkok,THB,Asia/Bangkok,\"th,en\"\n",
        "products.csv": "gtin,title,price,currency,title[th]\n"
                        f"{G1},Mango sticky rice bowl,120,THB,ชามข้าวเหนียวมะม่วง\n"
                        f"{G2},Elephant pants,390,THB,กางเกงลายช้าง\n",
        "stock.csv": f"store_code,id,quantity,instore_product_location\nbkk,{G1},4,Aisle 3\nbkk,{G2},0,\n",
        "offers.csv": "id,title,kind,discount_pct,valid_from,valid_until,title[th]\n"
                      f"hot,10% off this week,brand,10,{today},{today + dt.timedelta(days=7)},ลด 10% สัปดาห์นี้\n"
                      f"old,Songkran sale,brand,30,,{today - dt.timedelta(days=3)},ลดสงกรานต์\n",
        "delta.csv": f"store_code,id,quantity,instore_product_location\nbkk,{G2},6,Aisle 7\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with EmbeddedHub(HubSettings(db_path=db, migrate=False)) as hub:
        brand = ["--hub", hub.url, "--key", key]
        for kind, name in (("stores", "stores.csv"), ("products", "products.csv"), ("inventory", "stock.csv"),
                           ("offers", "offers.csv")):
            hub_cli(capsys, "import", kind, str(tmp_path / name), *brand)
        code = re.search(r"^code: (\S+)$", hub_cli(capsys, "code", "create", "--store", "bkk", "--expires", "1d", *brand),
                         re.M).group(1)
        k1 = tmp_path / "kiosk1"

        # the Thai shopper taps, then taps the mango bowl's tag
        lines = taps(kiosk("tap", "--hub", hub.url, "--code", code, "--uri", shopper_card,
                           "--uri", f"https://id.gs1.org/01/0{G1}", "--json", data_dir=k1))
        shopper, product = lines
        assert shopper["kind"] == "shopper" and shopper["language"] == "th"
        assert [o["title"] for o in shopper["offers"]] == ["ลด 10% สัปดาห์นี้"]  # the expired one never shows
        assert product["title"] == "ชามข้าวเหนียวมะม่วง" and product["available_here"] == 4
        assert product["location"] == "Aisle 3" and product["saved"]
        saved = {i["gtin"]: i for i in product["wishlist"]}
        assert THAI.search(saved["0" + G1]["title"])

        # a stock delta sent afterwards reaches the kiosk: the elephant pants are in now
        hub_cli(capsys, "import", "inventory", str(tmp_path / "delta.csv"), *brand)
        assert kiosk("sync", data_dir=k1).returncode == 0  # both ways: what the sync worker does every pull interval
        again = taps(kiosk("tap", "--uri", shopper_card, "--uri", f"https://id.gs1.org/01/0{G2}", "--json", data_dir=k1))
        pants = again[1]
        assert pants["title"] == "กางเกงลายช้าง" and pants["available_here"] == 6 and pants["location"] == "Aisle 7"
        assert [o["title"] for o in again[0]["offers"]] == ["ลด 10% สัปดาห์นี้"]

        # the code worked once
        second = kiosk("enroll", "--hub", hub.url, "--code", code, data_dir=tmp_path / "kiosk2")
        assert second.returncode != 0 and "Traceback" not in second.stderr

        fleet = json.loads(hub_cli(capsys, "devices", "--json", *brand))["devices"]
        assert len(fleet) == 1 and fleet[0]["store_code"] == "bkk" and fleet[0]["online"]
        port = hub.port

    # the store's network drops: the shopper taps and saves the pants offline (queued)
    offline = taps(kiosk("tap", "--uri", shopper_card, "--uri", f"https://id.gs1.org/01/0{G2}", "--json", data_dir=k1))
    assert offline[0]["source"] == "cache" and offline[1]["saved"]
    with EmbeddedHub(HubSettings(db_path=db, migrate=False), port=port) as hub:
        brand = ["--hub", hub.url, "--key", key]
        # meanwhile the brand removed the kiosk from its fleet: its next call is refused, it says so
        hub_cli(capsys, "device", "revoke", fleet[0]["id"], *brand)
        kiosk("sync", data_dir=k1)
        status = kiosk("status", "--json", data_dir=k1)
        assert "removed from the fleet" in status.stdout + status.stderr
        assert json.loads(status.stdout)["outbox_depth"] >= 2  # its visit waits, nothing lost
        refused = taps(kiosk("tap", "--uri", shopper_card, "--json", data_dir=k1))[0]
        assert refused["kind"] == "error" and not refused.get("shopper")  # no profile at a removed kiosk

        # enrolled again with a new code, it delivers what it kept
        fresh = re.search(r"^code: (\S+)$", hub_cli(capsys, "code", "create", "--store", "bkk", *brand), re.M).group(1)
        assert kiosk("enroll", "--hub", hub.url, "--code", fresh, data_dir=k1).returncode == 0
        assert kiosk("sync", data_dir=k1).returncode == 0
        after = json.loads(kiosk("status", "--json", data_dir=k1).stdout)
        assert after["outbox_depth"] == 0 and after.get("parked", 0) == 0
        store = HubStore(db, migrate=False)
        try:
            saved = store.all("SELECT gtin FROM wishlist_adds WHERE shopper_id='s-th'")
            assert ("0" + G2,) in saved and ("0" + G1,) in saved
        finally:
            store.close()
        assert requests.get(hub.url + "/v1/ready", timeout=5).status_code == 200
