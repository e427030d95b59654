"""tests/pgcluster.py: a real PostgreSQL server that can be restarted under the tests' feet.

Never skipped: without PostgreSQL this fails with PostgresNotInstalled (scripts/bootstrap.sh test).
"""
import psycopg
import pytest

from tests.pgcluster import PgCluster


def test_cluster_restart_keeps_data_and_stop_cleans_up():
    with PgCluster() as pg:
        url = pg.create_database("pgcluster_check")
        assert url == f"postgresql://postgres@127.0.0.1:{pg.port}/pgcluster_check"
        held = psycopg.connect(url, autocommit=True)
        assert held.execute("SELECT 1").fetchone() == (1,)
        held.execute("CREATE TABLE kept (v int)")
        held.execute("INSERT INTO kept VALUES (42)")
        port = pg.port

        pg.stop_server()
        with pytest.raises(psycopg.OperationalError):   # an open connection is cut off ...
            held.execute("SELECT 1")
        held.close()
        with pytest.raises(psycopg.OperationalError):   # ... and new ones are refused
            psycopg.connect(url, connect_timeout=3)

        pg.start_server()
        assert pg.port == port
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [(42,)]

        pg.drop_database("pgcluster_check")
        pg.drop_database("pgcluster_check")             # idempotent
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=3)
        root = pg.root
    assert not root.exists()
    pg.stop()                                           # idempotent
