"""One SQL text for SQLite and PostgreSQL, and the connection a transaction runs on.

The hub writes each statement once, with `?` placeholders; SQLAlchemy 2 Core `text()` runs it
on sqlite3 or psycopg 3. This module makes that text fit both: the named parameters `text()`
takes, an `IN (?*)` list (one array parameter on PostgreSQL), independent statements in one
round trip (a psycopg pipeline), a many-row insert with RETURNING, the SQLite connection's
settings, and a database named in messages without its password. The store itself (engine,
pool, transactions) is hub/store.py.

    conn.rows_in("SELECT gtin, title FROM products WHERE gtin IN (?*)", gtins)
"""
from __future__ import annotations

import contextlib
import re
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url


def database_url(db: Path | str) -> str:
    """A file path (SQLite) or a URL: postgresql://user@host:port/db runs on psycopg 3."""
    db = str(db)
    if db.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + db.split("://", 1)[1]
    if "://" in db:
        return db
    return "sqlite:///" + str(Path(db))


def safe_url(db: Path | str) -> str:
    """The database named without its password, for messages and logs."""
    if "://" not in str(db):
        return str(db)
    try:
        return make_url(database_url(db)).render_as_string(hide_password=True).replace("+psycopg", "")
    except Exception:  # noqa: BLE001 - an unparsable URL is named as given, minus anything after ':' '@'
        return re.sub(r"//[^@/]*@", "//***@", str(db))


def sqlite_connect(dbapi, _record) -> None:
    """Every new SQLite connection: WAL, a full fsync at commit, a 30 s wait for the write lock, foreign keys."""
    dbapi.isolation_level = None  # SQLAlchemy's "begin" event issues BEGIN IMMEDIATE itself
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000", "foreign_keys=ON"):
        dbapi.execute(f"PRAGMA {pragma}")


def sqlite_begin(sa) -> None:
    """A transaction (not the autocommit twin's statements) takes SQLite's write lock as it
    begins: writers wait their turn (busy_timeout) instead of failing part of the way."""
    if sa.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        sa.exec_driver_sql("BEGIN IMMEDIATE")


def _named(sql: str) -> str:
    """One SQL text for both dialects: `?` placeholders become SQLAlchemy's `:p0, :p1, ...`."""
    parts = sql.split("?")
    return "".join(p + (f":p{i}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))


_TEXT: dict[str, object] = {}


def q(sql: str):
    found = _TEXT.get(sql)
    if found is None:
        found = _TEXT[sql] = text(_named(sql))
    return found


def bind(params) -> dict:
    if isinstance(params, dict):
        return params
    return {f"p{i}": v for i, v in enumerate(params)}


class Conn:
    """The connection a transaction runs on, with the small sqlite3-like surface the hub uses."""

    def __init__(self, sa) -> None:
        self.sa = sa

    def execute(self, sql: str, params=()):
        return self.sa.execute(q(sql), bind(params))

    def executemany(self, sql: str, rows) -> None:
        if not rows:
            return
        if self.sa.dialect.name == "sqlite" and len(rows) > 50 and not isinstance(rows[0], dict):
            self.sa.exec_driver_sql(sql, [tuple(r) for r in rows])  # the driver's own `?`: no binding per row
            return
        self.sa.execute(q(sql), [bind(r) for r in rows])

    def insert_returning(self, sql: str, rows: list[tuple]) -> list[tuple]:
        """One `INSERT ... VALUES (?, ...) ... RETURNING` for many rows; every returned row.
        PostgreSQL: one pipelined executemany on psycopg (the statement prepared once, one
        round trip); SQLite, in process, runs it row by row. The same SQL text on both."""
        if not rows:
            return []
        if self.sa.dialect.name != "postgresql":  # multi-row VALUES, the row's group repeated
            head, group, tail = _values_group(sql)
            out = []
            for start in range(0, len(rows), 100):
                chunk = rows[start:start + 100]
                out += self.sa.execute(q(head + ",".join([group] * len(chunk)) + tail),
                                       bind([v for row in chunk for v in row])).fetchall()
            return out
        with _driver_errors(self.sa, sql):
            cur = self.sa.connection.driver_connection.cursor()
            try:
                cur.executemany(_pyformat(sql), rows, returning=True)
                out = []
                while True:
                    out += cur.fetchall()
                    if not cur.nextset():
                        return out
            finally:
                cur.close()

    def rows_in(self, sql: str, values, params: tuple = ()) -> list[tuple]:
        statement = in_list(self.sa.dialect.name, sql, values, params)
        if statement is None:
            return []
        if self.sa.dialect.name == "sqlite":  # thousands of `?`: the driver's own, no compiling
            return self.sa.exec_driver_sql(statement[0], tuple(statement[1])).fetchall()
        return all_of(self.sa, [statement])[0]

    def all_of(self, statements: list[tuple[str, tuple]]) -> list[list[tuple]]:
        return all_of(self.sa, statements)

    def in_list(self, sql: str, values, params: tuple = ()):
        return in_list(self.sa.dialect.name, sql, values, params)


def in_list(dialect: str, sql: str, values, params: tuple = ()) -> tuple[str, tuple] | None:
    """`sql` whose one `IN (?*)` is filled from `values` (at most a batch's 1,000; SQLite takes
    32,766 parameters): on PostgreSQL `= ANY(?)` with one array parameter (one short statement,
    prepared once), on SQLite an IN list. `params` are the placeholders before the list (the
    list comes last in `sql`). None when there are no values (nothing to ask)."""
    values = sorted(set(values))
    if not values:
        return None
    if dialect == "postgresql":
        return sql.replace(" IN (?*)", " = ANY(?)"), (*params, values)
    return sql.replace("(?*)", "(" + ",".join("?" * len(values)) + ")"), (*params, *values)


def all_of(sa, statements: list[tuple[str, tuple]]) -> list[list[tuple]]:
    """Independent statements (none needs another's result), each one's rows. PostgreSQL: sent
    together in one psycopg pipeline, one round trip for all of them, which matters most when
    the machine is busy and every wake-up waits for a core. SQLite: one after the other."""
    if sa.dialect.name != "postgresql":
        out = []
        for sql, params in statements:
            result = sa.execute(q(sql), bind(params))
            out.append(result.fetchall() if result.returns_rows else [])
        return out
    with _driver_errors(sa, statements[0][0]):
        raw = sa.connection.driver_connection
        cursors = []
        try:
            with raw.pipeline():
                for sql, params in statements:
                    cursors.append(raw.cursor())
                    cursors[-1].execute(_pyformat(sql), tuple(params))
            return [c.fetchall() if c.description else [] for c in cursors]
        finally:
            for c in cursors:
                c.close()


@contextlib.contextmanager
def _driver_errors(sa, sql: str):
    """psycopg's own errors, for statements sent to the driver directly, as SQLAlchemy's (the
    app answers those with 503 and the pool drops a broken connection)."""
    import psycopg
    from sqlalchemy.exc import DBAPIError
    try:
        yield
    except psycopg.Error as exc:
        if isinstance(exc, psycopg.OperationalError) or getattr(sa.connection.driver_connection, "broken", False):
            sa.invalidate(exc)
        raise DBAPIError.instance(sql, None, exc, psycopg.Error, connection_invalidated=sa.invalidated) from exc


def _values_group(sql: str) -> tuple[str, str, str]:
    """'INSERT ... VALUES (?,?) ON ...' as ('INSERT ... VALUES ', '(?,?)', ' ON ...')."""
    at = sql.index("VALUES (") + len("VALUES ")
    end = sql.index(")", at) + 1
    return sql[:at], sql[at:end], sql[end:]


def _pyformat(sql: str) -> str:
    """`?` placeholders as psycopg's own `%s` (for a statement sent to the driver directly)."""
    return sql.replace("%", "%%").replace("?", "%s")
