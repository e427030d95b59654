"""Issue 13, item 5: one source of truth for configuration (kiosk/config.py, README
"Configuration"): defaults < TOML file < environment < flags < device settings made on the
technician screen < the hub the kiosk enrolled with. And item 9 at the core: the technician
changes the technician PIN, stored hashed in the device settings, never in the TOML file.
The hub cases run the real enrollment against the real hub on loopback."""
import json
import shutil

import pytest

from hub.app import HubSettings
from hub.server import EmbeddedHub
from kiosk.app import build_service, pinned_hub_url
from kiosk.config import Config, load_config
from kiosk.provisioning import load_identity
from kiosk.staff import DeviceSettings, PinLock, change_technician_pin, hash_pin, verify_pin, weak_pin
from tests.taps import card

ELSEWHERE = "https://hub.attacker.example"


def write_toml(path, **values):
    lines = ["[kiosk]"] + [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_each_layer_wins_over_the_one_below(tmp_path):
    data = tmp_path / "data"
    toml = write_toml(tmp_path / "kiosk.toml", data_dir=str(data), language="vi", idle_timeout_s=40,
                      reader="nfcpy:usb", device_name="from-the-file", staff_idle_timeout_s=20)
    environ = {"KIOSK_LANGUAGE": "ru", "KIOSK_READER": "pcsc", "KIOSK_STAFF_IDLE_TIMEOUT_S": "25"}
    assert load_config(toml, environ={}).language == "vi"  # the file over the defaults
    config = load_config(toml, environ=environ)
    assert (config.language, config.reader, config.staff_idle_timeout_s) == ("ru", "pcsc", 25.0)  # env over file
    assert (config.idle_timeout_s, config.device_name) == (40.0, "from-the-file")  # the file where env is silent
    assert config.cache_ttl_s == Config().cache_ttl_s and config.idle_warning_s == 20.0  # defaults
    assert load_config(toml, environ=environ, overrides={"reader": "simulated"}).reader == "simulated"  # flags
    DeviceSettings(config.settings_file).save(config, language="th", idle_warning_s=25, staff_idle_timeout_s=30)
    set_on_screen = load_config(toml, environ=environ, overrides={"reader": "simulated"})
    assert (set_on_screen.language, set_on_screen.idle_warning_s, set_on_screen.staff_idle_timeout_s) == \
        ("th", 25.0, 30.0)  # the technician screen over all of them
    assert (set_on_screen.idle_timeout_s, set_on_screen.reader) == (40.0, "simulated")  # not a device setting
    assert load_config(toml, environ={"KIOSK_DATA_DIR": str(tmp_path / "other")}).language == "vi"  # per data dir


def test_a_damaged_or_invalid_device_setting_is_ignored_never_fatal(tmp_path, caplog):
    base = load_config(tmp_path / "none.toml", environ={}, overrides={"data_dir": tmp_path})
    base.settings_file.write_text(json.dumps({"language": "xx", "idle_warning_s": 90, "idle_timeout_s": "soon",
                                              "technician_pin_hash": "246813", "hub_url": ELSEWHERE,
                                              "staff_idle_timeout_s": 40}))
    config = load_config(tmp_path / "none.toml", environ={}, overrides={"data_dir": tmp_path})
    assert config == base.replace(staff_idle_timeout_s=40)  # only the valid one; never a plain PIN, never a hub
    assert "ignoring the device setting" in caplog.text
    base.settings_file.write_text("{not json")
    assert load_config(tmp_path / "none.toml", environ={}, overrides={"data_dir": tmp_path}) == base
    with pytest.raises(ValueError):
        DeviceSettings(base.settings_file).save(base, hub_url=ELSEWHERE)  # a hub is never a device setting
    with pytest.raises(ValueError):
        DeviceSettings(base.settings_file).save(base, technician_pin_hash="246813")  # hashed only


def test_the_technician_pin_changed_on_the_device_wins_over_the_file_which_is_left_alone(tmp_path):
    toml = write_toml(tmp_path / "kiosk.toml", data_dir=str(tmp_path / "data"),
                      technician_pin_hash=hash_pin("135790"))
    before = toml.read_bytes()
    config = load_config(toml, environ={})
    result, changed = change_technician_pin(config, "135790", "246813", "246813")
    assert result.ok and verify_pin("246813", changed.technician_pin_hash)
    assert toml.read_bytes() == before  # nothing written to the config file
    stored = json.loads(config.settings_file.read_text())["technician_pin_hash"]
    assert stored.startswith("scrypt:") and "246813" not in stored  # hashed, salted
    restarted = load_config(toml, environ={"KIOSK_TECHNICIAN_PIN_HASH": hash_pin("999000")})
    assert verify_pin("246813", restarted.technician_pin_hash)  # over the file and the environment
    assert not verify_pin("135790", restarted.technician_pin_hash)
    lock = PinLock(restarted.data_dir / "pin-lock.json")
    assert lock.check("246813", restarted.technician_pin_hash) and not lock.check("135790", restarted.technician_pin_hash)


def test_a_pin_change_says_what_is_wrong(tmp_path):
    config = load_config(tmp_path / "none.toml", environ={},
                         overrides={"data_dir": tmp_path, "technician_pin_hash": hash_pin("1234")})
    result, same = change_technician_pin(config, "9999", "246813", "246813")
    assert (result.ok, result.code, result.tries_left) == (False, "wrong_pin", 4) and same is config
    assert change_technician_pin(config, "1234", "246813", "246831")[0].code == "mismatch"
    for weak in ("12345", "1234567890123", "123456", "987654", "111111", "24681a", "๒๔๖๘๑๓", "２４６８１３", ""):
        assert change_technician_pin(config, "1234", weak, weak)[0].code == "weak_pin", weak
    assert not weak_pin("246813") and not weak_pin("135792")
    result, changed = change_technician_pin(config, "1234", "246813", "246813")
    assert result.ok
    assert change_technician_pin(changed, "246813", "246813", "246813")[0].code == "same_pin"
    assert not (tmp_path / "none.toml").exists()
    for _ in range(4):  # wrong current PINs count like wrong unlocks, and lock the same way
        assert change_technician_pin(changed, "0000", "802468", "802468")[0].code == "wrong_pin"
    locked = change_technician_pin(changed, "0000", "802468", "802468")[0]
    assert locked.code == "locked" and locked.locked_for_s == 300
    assert change_technician_pin(changed, "246813", "802468", "802468")[0].code == "locked"


def test_a_first_technician_pin_needs_no_current_one(tmp_path):
    config = load_config(tmp_path / "none.toml", environ={}, overrides={"data_dir": tmp_path})
    assert not config.technician_pin_hash
    result, changed = change_technician_pin(config, "", "246813", "246813")
    assert result.ok and verify_pin("246813", load_config(tmp_path / "none.toml", environ={},
                                                          overrides={"data_dir": tmp_path}).technician_pin_hash)


def test_the_running_service_takes_the_new_pin_through_its_settings(hub, enrolled):
    service = build_service(enrolled.replace(technician_pin_hash=hash_pin("1234")), with_reader=False)
    try:
        result, config = change_technician_pin(service.config, "1234", "246813", "246813",
                                               save=service.desk.update_settings)
        assert result.ok and config is service.config and verify_pin("246813", config.technician_pin_hash)
        assert service.ask_pin()  # the PIN screen: a right PIN opens technician mode, nothing else does
        assert not service.desk.unlock_technician("1234").ok and service.mode == "pin"
        assert service.desk.unlock_technician("246813").ok and service.mode == "technician"
    finally:
        service.stop()


def test_the_enrolled_hub_wins_over_the_file_and_the_environment(hub, enrolled, tmp_path):
    toml = write_toml(tmp_path / "kiosk.toml", data_dir=str(enrolled.data_dir), hub_url=ELSEWHERE)
    for config in (load_config(toml, environ={}), load_config(toml, environ={"KIOSK_HUB_URL": ELSEWHERE}),
                   load_config(tmp_path / "none.toml", environ={"KIOSK_HUB_URL": ELSEWHERE},
                               overrides={"data_dir": enrolled.data_dir})):
        assert config.hub_url == hub.url
        assert pinned_hub_url(config.replace(hub_url=ELSEWHERE), load_identity(config.device_file)[1]) == hub.url
        service = build_service(config.replace(hub_url=ELSEWHERE), with_reader=False)  # even set after loading
        try:
            assert service.hub.base_url == hub.url and service.config.hub_url == hub.url
            assert service.handle_tag(card(0)).view.display_name == "Emma"
        finally:
            service.stop()
    fresh = load_config(toml, environ={}, overrides={"data_dir": tmp_path / "fresh"})
    assert fresh.hub_url == ELSEWHERE  # not enrolled yet: the file says where to enroll


@pytest.fixture
def second_hub(tmp_path, demo_db):
    path = tmp_path / "hub-b.db"
    shutil.copy(demo_db, path)
    with EmbeddedHub(HubSettings(db_path=path, demo=True, admin_token="admin-b")) as running:
        yield running


def test_a_kiosk_re_enrolled_on_screen_with_a_new_hub_keeps_it_after_a_restart(hub, enrolled, second_hub, tmp_path):
    """The TOML file still names the old hub; the technician screen's enrollment (the service's
    reenroll verb, the real enrollment path) moves the kiosk to the new one, and the restarted
    kiosk sends its new token there, not to the old hub."""
    toml = write_toml(tmp_path / "kiosk.toml", data_dir=str(enrolled.data_dir), hub_url=hub.url)
    service = build_service(load_config(toml, environ={}), with_reader=False)
    old_id = service.identity.device_id
    try:
        assert service.hub.base_url == hub.url and service.handle_tag(card(0)).view.display_name == "Emma"
        service.sync_now()
        result = service.reenroll(second_hub.url, "DEMO")
        assert result.ok and result.hub_url == second_hub.url
        assert service.hub.base_url == second_hub.url  # the running kiosk moved at once, not only after a restart
    finally:
        service.stop()
    identity, enrolled_url = load_identity(enrolled.device_file)
    assert enrolled_url == second_hub.url and identity.device_id != old_id
    restarted = load_config(toml, environ={})  # the file was not touched: it still names the old hub
    assert f'hub_url = "{hub.url}"' in toml.read_text() and restarted.hub_url == second_hub.url
    service = build_service(restarted, with_reader=False)
    try:
        assert service.hub.base_url == second_hub.url and service.status().hub_url == second_hub.url
        assert service.handle_tag(card(0)).view.display_name == "Emma"
        service.sync.heartbeat()
        assert second_hub.store.one("SELECT heartbeat FROM devices WHERE id=?", (identity.device_id,))[0]
        assert hub.store.one("SELECT count(*) FROM devices WHERE id=?", (identity.device_id,))[0] == 0
        assert not service.status().device_refused  # the new hub accepts the new token
    finally:
        service.stop()
