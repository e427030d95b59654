"""Shared fixtures: the real hub on a loopback port, real SQLite files in temp dirs.

Kivy's environment is set here, before anything can import Kivy (FIELD-NOTES.md).
"""
import os
import shutil
import tempfile

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from kiosk.config import load_config  # noqa: E402
from hub.app import HubSettings  # noqa: E402
from hub.server import EmbeddedHub  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """The demo world seeded once per run (drawing 152 images takes a moment); tests copy it."""
    from hub import demo
    from hub.store import HubStore

    path = tmp_path_factory.mktemp("demo") / "hub.db"
    store = HubStore(path)
    demo.seed(store)
    store.close()
    return path


@pytest.fixture
def hub_db(tmp_path, demo_db) -> Path:
    path = tmp_path / "hub.db"
    shutil.copy(demo_db, path)
    return path


@pytest.fixture
def hub(hub_db):
    """The reference hub with the demo world, on a free loopback port."""
    with EmbeddedHub(HubSettings(db_path=hub_db, demo=True, admin_token="admin-test")) as running:
        yield running


@pytest.fixture
def kiosk_config(tmp_path):
    return load_config(tmp_path / "none.toml", environ={}, overrides={
        "data_dir": tmp_path / "kiosk", "hub_timeout_s": 1.0, "sync_timeout_s": 2.0, "sync_interval_s": 0.2})


@pytest.fixture
def enrolled(hub, kiosk_config):
    from kiosk.app import ensure_enrolled

    ensure_enrolled(kiosk_config, hub.url, "DEMO")
    return kiosk_config
