"""The hub's own command: `python -m hub`, `kiosk-hub`, or `kiosk hub` (which hands over here).

    kiosk hub --db hub.db --demo --port 8080

Exit codes: 0 ok, 2 usage or configuration (a database that cannot be opened).
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

DEMO_CODE = "DEMO"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiosk hub", description="run the reference hub (API v1)")
    p.add_argument("--db", help="the hub's SQLite file (default: $KIOSK_HUB_DB, else ./hub.db)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--demo", action="store_true", help="seed the demo world")
    p.add_argument("--admin-token", help="token for shopper-app calls (phone key registration)")
    return p


def main(argv: list[str] | None = None, default_db: Path | None = None) -> int:
    args = parser().parse_args(argv)
    from hub.app import HubSettings
    from hub.server import serve

    db = Path(args.db or os.environ.get("KIOSK_HUB_DB") or default_db or "hub.db")
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        settings = HubSettings(db_path=db, demo=args.demo, admin_token=args.admin_token or "")
        print(f"hub: database {db}; http://{args.host}:{args.port} (OpenAPI at /openapi.json)", file=sys.stderr)
        if args.demo:
            print(f"hub: demo world loaded; enrollment code {DEMO_CODE!r}; `kiosk demo-cards` lists the cards",
                  file=sys.stderr)
        serve(settings, args.host, args.port)
    except (OSError, sqlite3.Error) as exc:
        print(f"hub: cannot open the database {db}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
