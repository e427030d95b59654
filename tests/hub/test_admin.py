"""Admin clients through the real hub on loopback: per-client secrets with scopes, 401/403
problems, registrations that never move or un-revoke a key, and the admin CLI (secrets never
on argv)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from drivers import hce
from drivers.hce_phone import Phone
from hub import admin

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("card_key")  # tests/hub/conftest.py


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def register(hub, secret: str, shopper: str, credential_id: str, key: bytes) -> requests.Response:
    return requests.post(f"{hub.url}/v1/shoppers/{shopper}/phone-keys", headers=bearer(secret), timeout=5,
                         json={"credential_id": credential_id, "public_key": key.hex()})


def enroll(hub) -> tuple[str, dict]:
    d = requests.post(hub.url + "/v1/devices/enroll", json={"code": "DEMO"}, timeout=5).json()
    return d["device_id"], bearer(d["device_token"])


def phone_checkin(hub, device_id: str, auth: dict, phone: Phone) -> requests.Response:
    a = hce.exchange(phone.process_apdu, kiosk_id=device_id)
    return requests.post(hub.url + "/v1/checkins", headers=auth, timeout=5, json={"credential": {
        "kind": "hce", "credential_id": a.credential_id, "nonce": a.nonce.hex(), "kiosk_id": a.kiosk_id,
        "signature": a.signature.hex()}})


def hub_cli(*args: str, db, env: dict | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_HUB")}
    return subprocess.run([sys.executable, "-m", "hub", *args, "--db", str(db)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**clean, **(env or {})})


def test_scopes_are_enforced_and_bad_secrets_are_401(hub):
    cards_only = admin.add_client(hub.store, "card-desk", ["cards"])
    app = admin.add_client(hub.store, "shopper-app", ["phone-keys"])
    phone = Phone.generate("lan-scoped")
    forbidden = register(hub, cards_only, "shopper-01", phone.credential_id, phone.public_key_bytes())
    assert forbidden.status_code == 403 and forbidden.json()["type"].endswith("/forbidden")
    assert hub.store.one("SELECT 1 FROM phone_keys WHERE credential_id=?", (phone.credential_id,)) is None
    for wrong in (app[:-1] + ("A" if app[-1] != "A" else "B"), "admin-tes", "", "x" * 300):
        r = register(hub, wrong, "shopper-01", phone.credential_id, phone.public_key_bytes())
        assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"].endswith("/unauthorized") and "Traceback" not in r.text
    assert register(hub, app, "shopper-01", phone.credential_id, phone.public_key_bytes()).status_code == 204
    # a phone-keys client cannot touch cards, and neither can the transitional admin token
    for secret in (app, "admin-test"):
        r = requests.delete(f"{hub.url}/v1/sun-cards/04c0ffee424d01", headers=bearer(secret), timeout=5)
        assert r.status_code == 403
    # a revoked client is refused like an unknown one
    assert admin.revoke_client(hub.store, "shopper-app")
    again = register(hub, app, "shopper-01", phone.credential_id, phone.public_key_bytes())
    assert again.status_code == 401
    assert {c["id"]: c["revoked"] for c in admin.list_clients(hub.store)} == {"card-desk": False, "shopper-app": True}
    assert admin.secret_hash(app) in {r[0] for r in hub.store.all("SELECT secret_hash FROM admin_clients")}
    assert app not in str(hub.store.all("SELECT * FROM admin_clients"))  # only its hash is kept


def test_a_phone_key_never_moves_and_is_never_unrevoked(hub):
    app = admin.add_client(hub.store, "shopper-app", ["phone-keys"])
    phone, other = Phone.generate("lan-phone"), Phone.generate("lan-phone")  # same id, another key
    assert register(hub, app, "shopper-01", phone.credential_id, phone.public_key_bytes()).status_code == 204
    assert register(hub, app, "shopper-01", phone.credential_id, phone.public_key_bytes()).status_code == 204
    moved = register(hub, app, "shopper-02", phone.credential_id, phone.public_key_bytes())
    assert moved.status_code == 409 and moved.json()["type"].endswith("/conflict")
    swapped = register(hub, app, "shopper-01", phone.credential_id, other.public_key_bytes())
    assert swapped.status_code == 409
    assert register(hub, app, "shopper-nobody", "new-id", phone.public_key_bytes()).status_code == 404
    row = hub.store.one("SELECT shopper_id, public_key FROM phone_keys WHERE credential_id=?", (phone.credential_id,))
    assert row[0] == "shopper-01" and bytes(row[1]) == phone.public_key_bytes()
    device_id, auth = enroll(hub)
    shown = phone_checkin(hub, device_id, auth, phone)
    assert shown.status_code == 200 and shown.json()["shopper"]["id"] == "shopper-01"

    # revoked: the phone is answered like an unknown one, and registering it again is refused
    gone = requests.delete(f"{hub.url}/v1/shoppers/shopper-01/phone-keys/{phone.credential_id}",
                           headers=bearer(app), timeout=5)
    assert gone.status_code == 204
    assert hub.store.one("SELECT kind FROM revocations WHERE shopper_id='shopper-01'")[0] == "credential_revoked"
    unrevoke = register(hub, app, "shopper-01", phone.credential_id, phone.public_key_bytes())
    assert unrevoke.status_code == 409
    assert hub.store.one("SELECT revoked FROM phone_keys WHERE credential_id=?", (phone.credential_id,))[0] == 1
    revoked = phone_checkin(hub, device_id, auth, phone)
    unknown = phone_checkin(hub, device_id, auth, Phone.generate("never-registered"))
    assert revoked.status_code == unknown.status_code == 403
    assert {k: revoked.json()[k] for k in ("type", "detail")} == {k: unknown.json()[k] for k in ("type", "detail")}


def test_admin_cli_makes_clients_and_never_takes_a_secret_on_argv(hub, hub_db, tmp_path):
    secret_file = tmp_path / "desk.secret"
    made = hub_cli("admin", "add", "card-desk", "--scope", "cards", "--secret-file", str(secret_file), db=hub_db)
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text().strip()
    assert len(secret) >= 43 and secret not in made.stdout + made.stderr
    # once only: the same file is never overwritten, the same name never re-issued
    assert hub_cli("admin", "add", "card-desk2", "--scope", "cards", "--secret-file", str(secret_file),
                   db=hub_db).returncode == 2
    assert hub_cli("admin", "add", "card-desk", "--scope", "cards", db=hub_db).returncode == 2
    printed = hub_cli("admin", "add", "app", "--scope", "phone-keys", db=hub_db)
    assert printed.returncode == 0 and len(printed.stdout.strip()) >= 43
    listed = hub_cli("admin", "list", db=hub_db)
    assert "card-desk\tcards\tactive" in listed.stdout and secret not in listed.stdout
    assert printed.stdout.strip() not in listed.stdout

    # secrets have no place on the command line
    for argv in (("admin", "add", "x", "--scope", "cards", "--secret", "s3cret"),
                 ("admin", "add", "x", "--scope", "cards", "--token", "s3cret"),
                 ("--admin-token", "s3cret")):
        run = hub_cli(*argv, db=hub_db)
        assert run.returncode == 2 and "error:" in run.stderr and "Traceback" not in run.stderr
        assert not any(p.name.startswith("s3cret") for p in tmp_path.iterdir())
    for help_args in (("--help",), ("admin", "add", "--help")):
        text = hub_cli(*help_args, db=hub_db).stdout
        assert "--secret " not in text and "--admin-token " not in text and "--token" not in text

    phone = Phone.generate("lan-cli")
    assert register(hub, secret, "shopper-01", phone.credential_id, phone.public_key_bytes()).status_code == 403
    assert register(hub, printed.stdout.strip(), "shopper-01", phone.credential_id,
                    phone.public_key_bytes()).status_code == 204
    assert hub_cli("admin", "revoke", "app", db=hub_db).returncode == 0
    assert register(hub, printed.stdout.strip(), "shopper-01", "lan-cli-2",
                    phone.public_key_bytes()).status_code == 401
    assert hub_cli("admin", "revoke", "nobody", db=hub_db).returncode == 2


def test_a_lost_token_card_is_revoked_and_every_kiosk_of_every_brand_is_told(hub):
    from hub import demo
    desk = admin.add_client(hub.store, "card-desk", ["cards"])
    _, kiosk = enroll(hub)
    card = {"kind": "token", "token": demo.token_for(4)}
    shopper = requests.post(hub.url + "/v1/checkins", headers=kiosk, json={"credential": card}, timeout=5).json()
    since = requests.get(hub.url + "/v1/revocations", headers=kiosk, timeout=5).json()["cursor"]
    wrong = requests.post(hub.url + "/v1/cards:revoke", headers=bearer("nope"), timeout=5,
                          json={"kind": "token", "value": demo.token_for(4)})
    assert wrong.status_code == 401
    r = requests.post(hub.url + "/v1/cards:revoke", headers=bearer(desk), timeout=5,
                      json={"kind": "token", "value": demo.token_for(4)})
    assert r.status_code == 204
    again = requests.post(hub.url + "/v1/checkins", headers=kiosk, json={"credential": card}, timeout=5)
    assert again.status_code == 404  # answered like an unknown card
    feed = requests.get(hub.url + "/v1/revocations", params={"since": since}, headers=kiosk, timeout=5).json()
    assert {"shopper_id": shopper["shopper"]["id"], "kind": "credential_revoked"} in feed["revocations"]
