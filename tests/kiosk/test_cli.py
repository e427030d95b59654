"""The `kiosk` command as a user runs it: a real process against the hub on loopback."""
import json
import os
import subprocess
import sys

import pytest

from launch.cli import parser
from hub import demo


def kiosk(*args, data_dir, check=False):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    result = subprocess.run([sys.executable, "-m", "launch", "--data-dir", str(data_dir), *args],
                            capture_output=True, text=True, timeout=60, env=env)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_tap_json_card_then_product_reports_the_save(hub, tmp_path):
    card = demo.demo_cards()[0]["uri"]
    product = demo.demo_products()[4]
    result = kiosk("tap", "--hub", hub.url, "--uri", card, "--uri", product["uri"], "--json",
                   data_dir=tmp_path / "k", check=True)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["kind"] for line in lines] == ["shopper", "product"]
    shopper, saved = lines
    assert shopper["source"] == "hub" and shopper["shopper"]["display_name"] == "Emma"
    assert len({i["brand"] for i in shopper["wishlist"]}) >= 2
    assert all({"gtin", "title", "brand", "available_here"} <= set(i) for i in shopper["wishlist"])
    assert shopper["offers"] and shopper["error"] is None
    assert saved["saved"] and saved["gtin"] == product["gtin"] and saved["title"] == product["title"]
    assert saved["wishlist"][0]["gtin"] == product["gtin"]
    # the CLI drained its outbox: the hub has the add
    row = hub.store.one("SELECT count(*) FROM wishlist_adds WHERE shopper_id='shopper-00' AND gtin=?",
                        (product["gtin"],))
    assert row[0] == 1
    status = json.loads(kiosk("status", "--json", data_dir=tmp_path / "k", check=True).stdout)
    assert status["outbox_depth"] == 0 and status["hub_reachable"] and status["last_sync"] > 0


def test_tap_garbage_ndef_is_a_clear_error_and_nonzero_exit(hub, tmp_path):
    result = kiosk("tap", "--hub", hub.url, "--ndef-hex", "d10101ff", "--json", data_dir=tmp_path / "k")
    assert result.returncode == 1
    out = json.loads(result.stdout)
    assert out["kind"] == "error" and "NDEF" in out["error"]["detail"]
    assert "Traceback" not in result.stderr


def test_uid_badge_and_bad_hex(hub, tmp_path):
    staff_uid = demo.STAFF[0][3]
    out = json.loads(kiosk("tap", "--hub", hub.url, "--uid", staff_uid, "--json", data_dir=tmp_path / "k",
                           check=True).stdout)
    assert out["kind"] == "badge" and out["role"] == "staff"
    bad = kiosk("tap", "--hub", hub.url, "--uid", "zz", data_dir=tmp_path / "k")
    assert bad.returncode == 2 and "zz" in bad.stderr and "Traceback" not in bad.stderr


def test_offline_status_and_sync(hub, tmp_path):
    card = demo.demo_cards()[0]["uri"]
    kiosk("tap", "--hub", hub.url, "--uri", card, "--json", data_dir=tmp_path / "k", check=True)
    url = hub.url
    hub.stop()
    offline = kiosk("tap", "--hub", url, "--uri", card, "--json", data_dir=tmp_path / "k", check=True)
    assert json.loads(offline.stdout)["source"] == "cache"
    status = json.loads(kiosk("status", "--json", data_dir=tmp_path / "k", check=True).stdout)
    assert status["outbox_depth"] == 1 and status["hub_reachable"] is False
    sync = kiosk("sync", data_dir=tmp_path / "k")
    assert sync.returncode == 3 and "1 still waiting" in sync.stdout


def test_not_enrolled_is_a_message_not_a_traceback(tmp_path):
    result = kiosk("status", data_dir=tmp_path / "empty")
    assert result.returncode == 2 and "not enrolled" in result.stderr and "Traceback" not in result.stderr


def test_every_command_is_documented_in_the_readme():
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    commands = parser()._subparsers._group_actions[0].choices
    missing = [name for name in commands if f"kiosk {name}" not in readme]
    assert not missing, f"README does not document: {missing}"


@pytest.mark.parametrize("args", [["demo-cards"], ["demo-cards", "--json"]])
def test_demo_cards_lists_uris(args, tmp_path):
    out = kiosk(*args, data_dir=tmp_path, check=True).stdout
    assert demo.demo_cards()[0]["uri"] in out and "https://id.gs1.org/01/" in out
