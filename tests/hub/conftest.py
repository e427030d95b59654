"""The hub's suite runs on both databases: every test that takes `hub_db` (and so `hub`) runs
once on SQLite and once on a real PostgreSQL (a throwaway cluster, tests/pgcluster.py).
Nothing is skipped when PostgreSQL is missing: `make test` installs it."""
from __future__ import annotations

import itertools
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pgcluster import PgCluster  # noqa: E402

_names = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = PgCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def pg_demo_template(pg_cluster) -> str:
    """The demo world seeded once into a template database; each test gets a copy."""
    from hub import demo
    from hub.store import HubStore

    url = pg_cluster.create_database("demo_template")
    store = HubStore(url)
    demo.seed(store)
    store.close()
    return "demo_template"


def pg_copy(cluster: PgCluster, template: str) -> str:
    import psycopg

    name = f"t{next(_names)}"
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return cluster.url(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_kind(request) -> str:
    return request.param


@pytest.fixture
def hub_db(request, db_kind, tmp_path, demo_db):
    """The demo world's database for one test: a file (SQLite) or a URL (PostgreSQL)."""
    if db_kind == "sqlite":
        path = tmp_path / "hub.db"
        shutil.copy(demo_db, path)
        return path
    cluster = request.getfixturevalue("pg_cluster")
    return pg_copy(cluster, request.getfixturevalue("pg_demo_template"))


CARD_KEY = "5a" * 32  # the test hubs' card master key (SUN file keys are sealed under it)


@pytest.fixture
def card_key(request, monkeypatch):
    """PostgreSQL hubs have no file beside the database: give them a card key (SQLite hubs make
    `<db>.cardkey` themselves)."""
    monkeypatch.delenv("KIOSK_HUB_CARD_KEY_FILE", raising=False)
    monkeypatch.delenv("KIOSK_HUB_CARD_KEY", raising=False)
    if "db_kind" in request.fixturenames and request.getfixturevalue("db_kind") == "postgresql":
        monkeypatch.setenv("KIOSK_HUB_CARD_KEY", CARD_KEY)
