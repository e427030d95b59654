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
    run = subprocess.run([sys.executable, "-m", "launch", "hub", "--db", "/proc/no-such-dir/hub.db"],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 2
    assert "cannot open the database /proc/no-such-dir/hub.db" in run.stderr
    assert "Traceback" not in run.stderr
    help_text = subprocess.run([sys.executable, "-m", "hub", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert help_text.returncode == 0 and "--db" in help_text.stdout


def test_the_hub_installs_alone_and_serves_without_kivy_or_reader_libraries(tmp_path):
    """pip install ".[hub]" into a fresh venv: no Kivy, nfcpy or pyscard (requests is there: the
    import command is the brand API's client); the hub migrates a database and answers
    /v1/ready, and its fleet page renders (templates shipped)."""
    import shutil
    import time

    import requests

    from hub.server import free_port

    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", "build", ".git", "__pycache__", "*.egg-info"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "-q", f"{src}[hub]"], check=True, capture_output=True, timeout=600)
    probe = subprocess.run([py, "-c", "import importlib.util as u; print([m for m in ('kivy', 'nfc', 'smartcard', "
                                      "'ndef') if u.find_spec(m)])"], capture_output=True, text=True,
                           check=True, cwd=tmp_path)
    assert probe.stdout.strip() == "[]"
    db = tmp_path / "alone.db"
    assert subprocess.run([str(venv / "bin" / "kiosk-hub"), "migrate", "--db", str(db)], cwd=tmp_path,
                          capture_output=True, timeout=60).returncode == 0
    port = free_port()
    proc = subprocess.Popen([str(venv / "bin" / "kiosk-hub"), "--db", str(db), "--port", str(port)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ready = requests.get(f"http://127.0.0.1:{port}/v1/ready", timeout=1)
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.2)
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        page = requests.get(f"http://127.0.0.1:{port}/brand/sign-in", timeout=5)
        assert page.status_code == 200 and "<form" in page.text
    finally:
        proc.terminate()
        proc.wait(10)
