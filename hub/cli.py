"""The hub's own command: `python -m hub`, `kiosk-hub`, or `kiosk hub` (which hands over here).

    kiosk hub --db hub.db --demo --port 8080                      # SQLite, the demo world
    kiosk hub migrate --db postgresql://hub@db.internal:5432/hub  # bring a database up to date
    kiosk hub --db postgresql://hub@db.internal:5432/hub --workers 4

`--db` takes a SQLite file or a database URL. A hub started on a database that is behind
refuses to start and names `kiosk hub migrate`; a new SQLite file and `--demo` on an empty
database are set up in place. Exit codes: 0 ok, 2 usage, configuration or database.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEMO_CODE = "DEMO"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiosk hub", description="run the reference hub (API v1)")
    p.add_argument("action", nargs="?", choices=["serve", "migrate"], default="serve")
    p.add_argument("--db", help="a SQLite file or postgresql://user@host:port/db "
                                "(default: $KIOSK_HUB_DB, else hub.db in the kiosk's data dir)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, default=1, help="hub processes on this port (default 1)")
    p.add_argument("--demo", action="store_true", help="load the demo world (into an empty database)")
    p.add_argument("--admin-token-file", help="a file holding the token for shopper-app calls "
                                              "(phone key registration); or $KIOSK_HUB_ADMIN_TOKEN")
    return p


def _fail(message: str) -> int:
    print(f"hub: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None, default_db: Path | None = None) -> int:
    args = parser().parse_args(argv)
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from hub import migrations
    from hub.store import HubStore, safe_url

    db = args.db or os.environ.get("KIOSK_HUB_DB") or str(default_db or "hub.db")
    name = safe_url(db)
    if args.workers < 1:
        return _fail("--workers must be at least 1")
    admin_token = os.environ.get("KIOSK_HUB_ADMIN_TOKEN", "")
    if args.admin_token_file:
        try:
            admin_token = Path(args.admin_token_file).read_text().strip()
        except OSError as exc:
            return _fail(f"cannot read the admin token file: {exc.strerror}")
    try:
        new_file = "://" not in db and not Path(db).exists()
        store = HubStore(db, migrate=True) if args.action == "migrate" or new_file else HubStore(db, migrate=False)
        if args.action == "migrate":
            print(f"hub: {name} is at schema {migrations.current(store.engine)} (up to date)", file=sys.stderr)
            store.close()
            return 0
        if args.demo:
            from hub import demo
            demo.seed(store)
        store.close()
    except migrations.SchemaBehind as exc:
        if args.demo and migrations.current(HubStore.engine_for(db)) is None:
            store = HubStore(db, migrate=True)
            from hub import demo
            demo.seed(store)
            store.close()
        else:
            return _fail(str(exc))
    except (DBAPIError, SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0][:200] if str(exc) else type(exc).__name__
        return _fail(f"cannot open the database {name}: {reason}")
    from hub.server import serve

    print(f"hub: database {name}; http://{args.host}:{args.port}, {args.workers} worker(s) "
          f"(OpenAPI at /openapi.json, readiness at /v1/ready)", file=sys.stderr)
    if args.demo:
        print(f"hub: demo world loaded; enrollment code {DEMO_CODE!r}; `kiosk demo-cards` lists the cards",
              file=sys.stderr)
    try:
        serve(db, args.host, args.port, workers=args.workers, admin_token=admin_token)
    except KeyboardInterrupt:
        return 130
    return 0
