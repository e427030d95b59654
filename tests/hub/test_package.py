"""The hub is its own package: a hub server loads no Kivy, no reader library and nothing of
the kiosk but the shared contract; the kiosk core loads nothing of the hub."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = {"kiosk", "kiosk.api", "kiosk.errors", "kiosk.pins"}


def loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys; print('\\n'.join(sys.modules))"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_the_hub_server_loads_only_the_contract_of_the_kiosk(tmp_path):
    mods = loaded_after(f"from hub.app import HubSettings, create_app; from hub import cli, demo, server\n"
                        f"create_app(HubSettings(db_path=__import__('pathlib').Path({str(tmp_path / 'h.db')!r}), demo=True))")
    tops = {m.split(".")[0] for m in mods}
    assert not tops & {"kivy", "nfc", "smartcard", "ndef", "drivers", "ui", "requests", "sqlite_utils"}
    assert {m for m in mods if m.split(".")[0] == "kiosk"} <= CONTRACT


def test_the_kiosk_core_loads_nothing_of_the_hub():
    mods = loaded_after("import kiosk.app, kiosk.service, kiosk.sync, kiosk.hubclient, kiosk.identity")
    assert "hub" not in {m.split(".")[0] for m in mods}


def test_kiosk_hub_is_the_hubs_own_command(tmp_path):
    run = subprocess.run([sys.executable, "-m", "kiosk.cli", "hub", "--db", "/proc/no-such-dir/hub.db"],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 2
    assert "cannot open the database /proc/no-such-dir/hub.db" in run.stderr
    assert "Traceback" not in run.stderr
    help_text = subprocess.run([sys.executable, "-m", "hub", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert help_text.returncode == 0 and "--db" in help_text.stdout
