"""The brand commands through the real stack: a fresh hub (an empty SQLite file or PostgreSQL
database, no demo world), `kiosk hub brand create` on it, then feed files written here sent
by `kiosk hub import` over a loopback port, checked through the brand API's GETs. Bad input
(wrong check digits, negative stock, unknown stores, huge cells, `=cmd()`, broken UTF-8,
unknown headers) is named per row or refuses the file with nothing changed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from hub import brandcli, cli
from hub.app import HubSettings
from hub.server import EmbeddedHub, free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("card_key")  # tests/hub/conftest.py

STORES = "store_code,name,city,currency,timezone,languages\nhcm,Lotus Saigon,Ho Chi Minh City,VND,Asia/Ho_Chi_Minh,\"vi,en\"\n" \
         "bkk,Lotus Bangkok,Bangkok,THB,Asia/Bangkok,\"th,en\"\n"
# GTIN-13s with good check digits
G1, G2, G3 = "8934567000017", "8934567000024", "8934567000031"
PRODUCTS = ("gtin,title,price,currency,sku,description,title[th],description[th],title[vi]\n"
            f"{G1},Linen shirt,450000,VND,LS-1,Soft linen,เสื้อผ้าลินิน,ผ้าลินินนุ่ม,Áo sơ mi lanh\n"
            f"{G2},Silk scarf,320000,VND,SS-1,,ผ้าพันคอไหม,,\n"
            f"{G3},Bamboo hat,90000,VND,,,,,\n")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """`kiosk hub ...` in-process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def fresh_db(request, db_kind, tmp_path, monkeypatch) -> str:
    """A database with nothing in it (not even a schema): `brand create` sets it up."""
    for name in ("KIOSK_HUB_BRAND_KEY", "KIOSK_HUB_DB"):
        monkeypatch.delenv(name, raising=False)
    if db_kind == "sqlite":
        return str(tmp_path / "fresh.db")
    cluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database(f"fresh_{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**8}")


@pytest.fixture
def brand(fresh_db, capsys):
    """(hub, key, db): a brand `lotus` created with the CLI in a fresh hub, the hub running."""
    code, out, err = run(capsys, "brand", "create", "--db", fresh_db, "--id", "lotus", "--name", "Lotus & Linen")
    assert code == 0, err
    key = out.strip().removeprefix("key: ")
    assert key.startswith("bk_") and "admin key key-" in err
    with EmbeddedHub(HubSettings(db_path=fresh_db, migrate=False, brand_rate=0)) as hub:
        yield hub, key, fresh_db


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def get(hub, key: str, path: str) -> dict:
    r = requests.get(hub.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def imp(capsys, hub, key: str, kind: str, path: str, *more: str) -> tuple[int, str, str]:
    return run(capsys, "import", kind, path, "--hub", hub.url, "--key", key, *more)


def setup_catalog(capsys, hub, key, tmp_path) -> None:
    assert imp(capsys, hub, key, "stores", write(tmp_path, "stores.csv", STORES))[0] == 0
    assert imp(capsys, hub, key, "products", write(tmp_path, "products.csv", PRODUCTS))[0] == 0


def stock(hub, key, code: str = "hcm") -> dict:
    return {r["id"]: r for r in get(hub, key, f"/v1/brand/stores/{code}/inventory")["inventory"]}


def test_a_fresh_hub_gets_a_brand_and_its_feeds_from_csv_files(brand, capsys, tmp_path):
    hub, key, _ = brand
    assert get(hub, key, "/v1/brand")["id"] == "lotus"
    code, out, _ = imp(capsys, hub, key, "stores", write(tmp_path, "stores.csv", STORES))
    assert code == 0 and out.strip() == "created 2, updated 0, unchanged 0, stale 0, refused 0"
    code, out, _ = imp(capsys, hub, key, "products", write(tmp_path, "products.csv", PRODUCTS), "--json")
    assert code == 0 and json.loads(out) == {"counts": {"created": 3, "updated": 0, "unchanged": 0, "stale": 0,
                                                        "refused": 0}, "refused": []}
    inventory = ("store_code,id,quantity,availability,price,instore_product_location,as_of\n"
                 f"hcm,{G1},12,,,Aisle 4,\nhcm,{G2},0,,,,\nbkk,{G1},3,limited_availability,1500 THB,A1,\n")
    assert imp(capsys, hub, key, "inventory", write(tmp_path, "stock.csv", inventory))[0] == 0
    offers = ("id,title,kind,store_code,gtin,discount_pct,valid_from,valid_until,title[th]\n"
              "welcome,Welcome: 10% off,first_visit,,,10,,2099-12-31,ยินดีต้อนรับ ลด 10%\n"
              f"scarf,Scarf on sale,wishlist_promo,hcm,{G2},20,,,\n")
    assert imp(capsys, hub, key, "offers", write(tmp_path, "offers.csv", offers))[0] == 0

    assert {s["store_code"] for s in get(hub, key, "/v1/brand/stores")["stores"]} == {"hcm", "bkk"}
    shirt = get(hub, key, f"/v1/brand/products/{G1}")
    assert shirt["gtin"] == G1.zfill(14) and shirt["title"] == "Linen shirt" and shirt["sku"] == "LS-1"
    assert shirt["texts"]["th"] == {"title": "เสื้อผ้าลินิน", "description": "ผ้าลินินนุ่ม"}
    assert shirt["texts"]["vi"] == {"title": "Áo sơ mi lanh"}
    hcm = stock(hub, key)
    assert hcm[G1.zfill(14)]["quantity"] == 12 and hcm[G1.zfill(14)]["instore_product_location"] == "Aisle 4"
    assert hcm[G2.zfill(14)]["availability"] == "out_of_stock"
    bkk = stock(hub, key, "bkk")[G1.zfill(14)]
    assert bkk["price"] == "1500 THB" and bkk["availability"] == "limited_availability"
    found = {o["id"]: o for o in get(hub, key, "/v1/brand/offers")["offers"]}
    assert found["welcome"]["titles"] == {"th": "ยินดีต้อนรับ ลด 10%"} and found["welcome"]["discount_pct"] == 10
    assert found["scarf"]["store_code"] == "hcm" and found["scarf"]["gtin"] == G2.zfill(14)
    # the same files again change nothing
    code, out, _ = imp(capsys, hub, key, "products", write(tmp_path, "products.csv", PRODUCTS))
    assert code == 0 and out.strip() == "created 0, updated 0, unchanged 3, stale 0, refused 0"


def test_bad_rows_are_named_by_line_and_column_and_good_rows_land(brand, capsys, tmp_path):
    hub, key, _ = brand
    assert imp(capsys, hub, key, "stores", write(tmp_path, "stores.csv", STORES))[0] == 0
    huge = "x" * (10 * 1024 * 1024)
    products = ("gtin,title,price,currency\n"
                f"{G1},Good shirt,10,VND\n"                       # line 2
                "8934567000018,Wrong check digit,10,VND\n"        # line 3
                f"{G2},{huge},10,VND\n"                           # line 4: a 10 MB title
                f"{G3},=cmd()|calc,10,VND\n"                      # line 5: CSV injection, stored as text
                "\"4006381333931\",\"two\nlines\",1,VND\n"        # lines 6-7: a quoted line break
                "4006381333931,Negative,-1,VND\n"                # line 8: a negative price
                f"96385074,{'t' * 201},1,VND\n"                   # line 9: over 200 characters
                "00012345600012,Bell\x1b[31m,1,VND\n")            # line 10: a control character
    code, out, err = imp(capsys, hub, key, "products", write(tmp_path, "bad.csv", products))
    assert code == 1, err
    lines = out.splitlines()
    assert lines[-1] == "created 2, updated 0, unchanged 0, stale 0, refused 6"
    refused = lines[:-1]
    assert refused[0].startswith("line 3: column gtin: check digit is wrong")
    assert refused[1].startswith("line 4: column title: is 10,485,760 characters long")
    assert refused[2] == "line 6: column title: holds control or bidi characters"
    assert refused[3].startswith("line 8: column price: ")
    assert refused[4].startswith("line 9: column title: is longer than 200")
    assert refused[5].startswith("line 10: column title: ") and "\x1b" not in out
    assert get(hub, key, f"/v1/brand/products/{G3}")["title"] == "=cmd()|calc"  # verbatim; never executed
    assert get(hub, key, f"/v1/brand/products/{G1}")["title"] == "Good shirt"
    assert len(out) < 5000  # the 10 MB cell is never echoed

    inventory = ("store_code,id,quantity\n"
                 f"hcm,{G1},-4\n"        # negative quantity
                 f"nowhere,{G1},4\n"     # unknown store code
                 f"hcm,{G2},4\n"         # not a product of the brand (its row was refused)
                 f"hcm,{G1},5,extra\n"   # too many cells
                 f"hcm,{G3},6\n")
    code, out, _ = imp(capsys, hub, key, "inventory", write(tmp_path, "stock.csv", inventory), "--json")
    report = json.loads(out)
    assert code == 1 and report["counts"] == {"created": 1, "updated": 0, "unchanged": 0, "stale": 0, "refused": 4}
    assert [(e["line"], e["column"]) for e in report["refused"]] == [(2, "quantity"), (3, "store_code"), (4, "id"), (5, "")]
    assert "negative" in report["refused"][0]["reason"] and "cells" in report["refused"][3]["reason"]
    assert list(stock(hub, key)) == [G3.zfill(14)]


def test_a_file_that_cannot_be_read_whole_changes_nothing(brand, capsys, tmp_path):
    hub, key, _ = brand
    assert imp(capsys, hub, key, "stores", write(tmp_path, "stores.csv", STORES))[0] == 0
    cases = {
        "broken-utf8.csv": (b"gtin,title,price,currency\n" + f"{G1},ok,1,VND\n".encode()
                            + f"{G2},caf\xe9,1,VND\n".encode("latin-1"), "line 3: not valid UTF-8"),
        "unknown-header.csv": (f"gtin,title,price,currency,colour\n{G1},ok,1,VND,red\n", "unknown column 'colour'"),
        "missing-header.csv": (f"gtin,title,price\n{G1},ok,1\n", "currency is missing"),
        "bad-lang.csv": (f"gtin,title,price,currency,title[x y]\n{G1},ok,1,VND,z\n", "unknown column 'title[x y]'"),
        "twice.csv": (f"gtin,title,price,currency,title\n{G1},ok,1,VND,z\n", "appears twice"),
        "broken.json": ('{"products": [{"gtin": "1"', "not valid JSON"),
        "shape.json": ('{"items": []}', "unknown key 'items'"),
        "quote.csv": (f'gtin,title,price,currency\n{G1},"unterminated,1,VND\n', "cannot be read as CSV"),
        "empty.csv": ("", "the file is empty"),
    }
    for name, (text, why) in cases.items():
        code, out, err = imp(capsys, hub, key, "products", write(tmp_path, name, text))
        assert code == 1 and why in err and "nothing was sent" in err, (name, err)
        assert "Traceback" not in err
    big = tmp_path / "huge.csv"
    with open(big, "wb") as f:
        f.truncate(513 * 1024 * 1024)  # sparse: 513 MiB on paper
    code, _, err = imp(capsys, hub, key, "inventory", str(big))
    assert code == 1 and "at most 536,870,912" in err
    code, _, err = imp(capsys, hub, key, "products", str(tmp_path / "absent.csv"))
    assert code == 1 and "cannot read" in err
    assert get(hub, key, "/v1/brand/products")["products"] == []
    code, out, err = imp(capsys, hub, key, "products", write(tmp_path, "u.csv", cases["unknown-header.csv"][0]), "--json")
    assert code == 1 and "colour" in json.loads(out)["error"]


def test_the_same_inventory_file_twice_changes_nothing_and_stale_rows_never_win(brand, capsys, tmp_path):
    hub, key, _ = brand
    setup_catalog(capsys, hub, key, tmp_path)
    rows = "".join(f"{c},{g},{q},,,,2026-12-01T10:00:00+07:00\n" for c, g, q in
                   [("hcm", G1, 5), ("hcm", G2, 6), ("hcm", G3, 7), ("bkk", G1, 8), ("bkk", G2, 9)])
    path = write(tmp_path, "stock.csv", "store_code,id,quantity,availability,price,instore_product_location,as_of\n" + rows)
    code, out, _ = imp(capsys, hub, key, "inventory", path, "--batch-size", "2")
    assert code == 0 and out.startswith("created 5,")
    code, out, err = imp(capsys, hub, key, "inventory", path, "--batch-size", "2")
    assert code == 0 and out.strip() == "created 0, updated 0, unchanged 5, stale 0, refused 0"
    assert "3 call(s) of this file had been sent before" in err
    # a later file: an older row is stale, a newer one lands
    late = ("store_code,id,quantity,as_of\n"
            f"hcm,{G1},99,2026-11-30T10:00:00+07:00\n"   # older than what the hub has
            f"hcm,{G2},1,1796108400\n")                  # unix seconds: 2026-12-01T07:00:00Z, newer
    code, out, _ = imp(capsys, hub, key, "inventory", write(tmp_path, "late.csv", late))
    assert code == 0 and out.strip() == "created 0, updated 1, unchanged 0, stale 1, refused 0"
    hcm = stock(hub, key)
    assert hcm[G1.zfill(14)]["quantity"] == 5 and hcm[G2.zfill(14)]["quantity"] == 1
    # a JSON file with its own feed id: the id, not the bytes, makes it the same feed
    doc = {"feed_id": "pos-2026-12-03", "rows": [{"store_code": "bkk", "id": G3, "quantity": 4}]}
    jpath = write(tmp_path, "feed.json", json.dumps(doc))
    assert imp(capsys, hub, key, "inventory", jpath)[1].startswith("created 1,")
    assert imp(capsys, hub, key, "inventory", jpath)[1].startswith("created 0, updated 0, unchanged 1")
    rows = [{"store_code": "bkk", "id": G2, "quantity": 1}, {"store_code": "bkk", "id": G3, "quantity": -1}, "junk"]
    code, out, _ = imp(capsys, hub, key, "inventory", write(tmp_path, "list.json", json.dumps(rows)))
    assert code == 1 and out.splitlines()[:2] == ["row 1: column quantity: must not be negative",
                                                  "row 2: a row must be an object"]


def test_a_snapshot_zeroes_the_rows_it_does_not_name(brand, capsys, tmp_path):
    hub, key, _ = brand
    setup_catalog(capsys, hub, key, tmp_path)
    full = "store_code,id,quantity\n" + "".join(f"{c},{g},5\n" for c in ("hcm", "bkk") for g in (G1, G2, G3))
    assert imp(capsys, hub, key, "inventory", write(tmp_path, "full.csv", full))[0] == 0
    snap = f"store_code,id,quantity\nhcm,{G1},2\nbkk,{G2},3\n"
    code, out, _ = imp(capsys, hub, key, "inventory", write(tmp_path, "snap.csv", snap), "--snapshot", "--json")
    assert code == 0 and json.loads(out)["zeroed"] == 4
    assert {g: r["quantity"] for g, r in stock(hub, key).items()} == {G1.zfill(14): 2, G2.zfill(14): 0, G3.zfill(14): 0}
    assert {g: r["quantity"] for g, r in stock(hub, key, "bkk").items()} == {G1.zfill(14): 0, G2.zfill(14): 3, G3.zfill(14): 0}
    # one store's snapshot over the per-call limit is refused before anything is sent
    many = "store_code,id,quantity\n" + f"hcm,{G1},1\n" * 5001
    code, _, err = imp(capsys, hub, key, "inventory", write(tmp_path, "many.csv", many), "--snapshot")
    assert code == 1 and "5,001 rows" in err and "nothing was sent" in err
    assert stock(hub, key)[G1.zfill(14)]["quantity"] == 2
    # a snapshot of a store that is not the brand's: its rows are refused, the other store's land
    other = f"store_code,id,quantity\nnowhere,{G1},1\nhcm,{G1},7\n"
    code, out, _ = imp(capsys, hub, key, "inventory", write(tmp_path, "other.csv", other), "--snapshot")
    assert code == 1 and out.startswith("line 2: column store_code: ") and stock(hub, key)[G1.zfill(14)]["quantity"] == 7
    code, _, err = imp(capsys, hub, key, "products", write(tmp_path, "p.csv", PRODUCTS), "--snapshot")
    assert code == 2 and "inventory files only" in err


def test_exit_codes_for_keys_and_connections(brand, capsys, tmp_path, monkeypatch):
    hub, key, _ = brand
    path = write(tmp_path, "stores.csv", STORES)
    nobody = f"http://127.0.0.1:{free_port()}"
    code, _, err = run(capsys, "import", "stores", path, "--hub", nobody, "--key", key)
    assert code == 2 and "cannot reach the hub" in err and "Traceback" not in err
    code, _, err = run(capsys, "import", "stores", path, "--hub", hub.url, "--key", "bk_" + "x" * 43)
    assert code == 2 and "the hub refused this brand key" in err
    code, _, err = run(capsys, "import", "stores", path, "--hub", hub.url)
    assert code == 2 and "a brand key is required" in err
    code, _, err = run(capsys, "devices", "--hub", "ftp://x", "--key", key)
    assert code == 2 and "http(s) URL" in err
    with pytest.raises(SystemExit) as usage:
        run(capsys, "import", "pictures", path, "--hub", hub.url, "--key", key)
    assert usage.value.code == 2
    # the key from a file or the environment
    (tmp_path / "k").write_text(f"key: {key}\n")
    assert run(capsys, "import", "stores", path, "--hub", hub.url, "--key-file", str(tmp_path / "k"))[0] == 0
    monkeypatch.setenv("KIOSK_HUB_BRAND_KEY", key)
    assert run(capsys, "import", "stores", path, "--hub", hub.url)[1].startswith("created 0, updated 0, unchanged 2")


def test_a_hub_lost_mid_file_stops_and_the_same_command_again_is_safe(brand, capsys, tmp_path, monkeypatch):
    hub, key, _ = brand
    setup_catalog(capsys, hub, key, tmp_path)
    rows = "".join(f"{c},{g},3\n" for c in ("hcm", "bkk") for g in (G1, G2, G3))
    path = write(tmp_path, "stock.csv", "store_code,id,quantity\n" + rows)
    real, calls = requests.Session.request, []

    def flaky(self, method, url, **kw):
        calls.append(url)
        if len(calls) == 2:
            raise requests.ConnectionError("the network went away")
        return real(self, method, url, **kw)
    monkeypatch.setattr(requests.Session, "request", flaky)
    code, _, err = imp(capsys, hub, key, "inventory", path, "--batch-size", "2")
    assert code == 2 and "1 call(s) (2 of 6 rows) landed" in err and "Re-running the same command is safe" in err
    monkeypatch.setattr(requests.Session, "request", real)
    code, out, _ = imp(capsys, hub, key, "inventory", path, "--batch-size", "2")
    assert code == 0 and out.strip() == "created 4, updated 0, unchanged 2, stale 0, refused 0"
    assert len(stock(hub, key)) == 3 and len(stock(hub, key, "bkk")) == 3


def test_keys_as_the_brand_and_as_the_operator(brand, capsys):
    hub, key, db = brand
    code, out, _ = run(capsys, "key", "create", "--hub", hub.url, "--key", key, "--name", "pos", "--json")
    second = json.loads(out)
    assert code == 0 and second["key"].startswith("bk_") and second["id"].startswith("key-")
    code, out, _ = run(capsys, "key", "list", "--hub", hub.url, "--key", second["key"])
    assert code == 0 and "pos" in out and "admin" in out and "bk_" not in out
    admin_id = next(k["id"] for k in get(hub, key, "/v1/brand/keys")["keys"] if k["name"] == "admin")
    assert run(capsys, "key", "revoke", admin_id, "--hub", hub.url, "--key", second["key"])[0] == 0
    code, _, err = run(capsys, "devices", "--hub", hub.url, "--key", key)
    assert code == 2 and "refused this brand key" in err
    # the last active key is never revoked (the brand would lock itself out)
    code, _, err = run(capsys, "key", "revoke", second["id"], "--hub", hub.url, "--key", second["key"])
    assert code == 1 and "last active key" in err
    # the operator, on the database
    code, out, _ = run(capsys, "key", "create", "--db", db, "--brand", "lotus", "--name", "rescue")
    assert code == 0 and out.startswith("key: bk_")
    code, out, _ = run(capsys, "key", "list", "--db", db, "--brand", "lotus", "--json")
    assert {k["name"]: k["revoked"] for k in json.loads(out)["keys"]} == {"admin": True, "pos": False, "rescue": False}
    code, _, err = run(capsys, "key", "list", "--db", db, "--brand", "nobody")
    assert code == 1 and "no brand" in err
    code, _, err = run(capsys, "brand", "create", "--db", db, "--id", "lotus", "--name", "again")
    assert code == 1 and "exists already" in err
    code, _, err = run(capsys, "brand", "create", "--db", db, "--id", "Bad-Id", "--name", "x")
    assert code == 1 and "brand id" in err


def test_enrollment_codes_devices_and_revoking_a_kiosk(brand, capsys, tmp_path):
    hub, key, _ = brand
    assert imp(capsys, hub, key, "stores", write(tmp_path, "stores.csv", STORES))[0] == 0
    flags = ("--hub", hub.url, "--key", key)
    code, out, _ = run(capsys, "code", "create", "--store", "hcm", "--expires", "2h", *flags)
    fields = dict(line.split(": ", 1) for line in out.splitlines())
    assert code == 0 and fields["store"] == "hcm" and fields["id"].startswith("code-")
    code, out, _ = run(capsys, "code", "list", *flags)
    assert fields["id"] in out and "active" in out and fields["code"] not in out
    enrolled = requests.post(hub.url + "/v1/devices/enroll", json={"code": fields["code"], "name": "till-1"}, timeout=5)
    assert enrolled.status_code == 200
    assert requests.post(hub.url + "/v1/devices/enroll", json={"code": fields["code"]}, timeout=5).status_code == 403
    device_id, auth = enrolled.json()["device_id"], {"Authorization": "Bearer " + enrolled.json()["device_token"]}
    assert f"used by {device_id}" in run(capsys, "code", "list", *flags)[1]
    code, out, _ = run(capsys, "code", "create", "--store", "bkk", "--json", *flags)
    spare = json.loads(out)
    assert run(capsys, "code", "revoke", spare["id"], *flags)[0] == 0
    assert "revoked" in run(capsys, "code", "list", *flags)[1]
    assert requests.post(hub.url + "/v1/devices/enroll", json={"code": spare["code"]}, timeout=5).status_code == 403
    code, _, err = run(capsys, "code", "create", "--store", "nowhere", *flags)
    assert code == 1 and "HTTP 404" in err
    with pytest.raises(SystemExit):
        run(capsys, "code", "create", "--store", "hcm", "--expires", "soon", *flags)
    assert run(capsys, "code", "create", "--store", "hcm", "--expires", "91d", *flags)[0] == 2

    import time
    beat = {"version": "1.4.0", "reader_state": "ready", "outbox_depth": 3, "parked": 1, "last_sync": time.time() - 30,
            "sent_at": time.time() + 2, "free_disk_mb": 812}
    assert requests.post(f"{hub.url}/v1/devices/{device_id}/heartbeat", json=beat, headers=auth, timeout=5).status_code == 204
    code, out, _ = run(capsys, "devices", *flags)
    header, line = out.splitlines()
    assert code == 0 and header.split()[:4] == ["id", "name", "store", "state"]
    for want in (device_id, "till-1", "hcm", "online", "1.4.0", "ready", "812 MB", "30s ago"):
        assert want in line, want
    devices = json.loads(run(capsys, "devices", "--json", *flags)[1])["devices"]
    assert devices[0]["outbox_depth"] == 3 and devices[0]["clock_skew_s"] is not None
    assert run(capsys, "device", "revoke", device_id, *flags)[0] == 0
    r = requests.post(f"{hub.url}/v1/devices/{device_id}/heartbeat", json=beat, headers=auth, timeout=5)
    assert r.status_code == 401 and r.json()["type"].endswith("/device-revoked")
    assert "revoked" in run(capsys, "devices", *flags)[1]
    code, _, err = run(capsys, "device", "revoke", "dev-000000000000", *flags)
    assert code == 1 and "HTTP 404" in err


def test_the_commands_as_a_subprocess(tmp_path, monkeypatch):
    """`python -m hub` end to end: a new SQLite hub from `brand create`, a file imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_HUB")}
    db = tmp_path / "sub.db"

    def hub_cmd(*args):
        return subprocess.run([sys.executable, "-m", "hub", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=60, env=env)
    helped = hub_cmd("--help")
    assert all(word in helped.stdout for word in ("brand", "import", "devices"))
    made = hub_cmd("brand", "create", "--db", str(db), "--id", "subway", "--name", "Sub", "--json")
    assert made.returncode == 0 and json.loads(made.stdout)["brand"] == "subway"
    with EmbeddedHub(HubSettings(db_path=db, migrate=False)) as hub:
        keyfile = tmp_path / "subway.key"
        keyfile.write_text(json.loads(made.stdout)["key"])
        done = hub_cmd("import", "stores", write(tmp_path, "s.csv", STORES), "--hub", hub.url, "--key-file", str(keyfile))
        assert done.returncode == 0 and done.stdout.startswith("created 2") and "sent 2 of 2 rows" in done.stderr


def test_a_rate_limited_key_waits_and_sends_again(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KIOSK_HUB_BRAND_KEY", raising=False)
    db = str(tmp_path / "slow.db")
    key = run(capsys, "brand", "create", "--db", db, "--id", "slow", "--name", "Slow")[1].strip().removeprefix("key: ")
    with EmbeddedHub(HubSettings(db_path=db, migrate=False, brand_rate=5, brand_burst=1)) as hub:
        code, out, _ = imp(capsys, hub, key, "stores", write(tmp_path, "s.csv", STORES), "--batch-size", "1")
        assert code == 0 and out.startswith("created 2,")


def test_every_command_is_documented():
    doc = (ROOT / "docs" / "brand-feeds.md").read_text()
    for words in ("brand create", "key create", "key list", "key revoke", "import products", "code create",
                  "code list", "code revoke", "hub devices", "device revoke", "--snapshot", "--key-file",
                  "KIOSK_HUB_BRAND_KEY", "--batch-size", "--json"):
        assert words in doc, words
    assert set(cli.BRAND_WORDS) == set(brandcli.parser()._subparsers._group_actions[0].choices)


def test_the_progress_bar_is_drawn_on_a_terminal_only(monkeypatch, capsys):
    class Tty:
        text = ""

        def write(self, s):
            Tty.text += s

        def flush(self):
            pass

        def isatty(self):
            return True
    monkeypatch.setattr(sys, "stderr", Tty())
    bar = brandcli.Progress(100_000, show=True)
    bar.add(40_000)
    assert "\r[########............]  40% 40,000/100,000 rows" in Tty.text
    bar.add(60_000)
    bar.finish(20)
    assert Tty.text.endswith("\nhub: sent 100,000 of 100,000 rows in 20 calls (0.0 s)\n")
    monkeypatch.undo()
    quiet = brandcli.Progress(10, show=True)  # stderr is not a terminal here: the last line only
    quiet.add(10)
    quiet.finish(1)
    assert capsys.readouterr().err == "hub: sent 10 of 10 rows in 1 call (0.0 s)\n"


def test_report_text_is_safe_for_a_terminal():
    assert brandcli.clean("a\x1b[2Jb\u202ec\nd") == "a\\u001b[2Jb\\u202ec\\u000ad"
    assert brandcli.duration("7d") == 604800 and brandcli.duration("90m") == 5400 and brandcli.duration("45") == 45
