"""The hub's own command: `python -m hub`, `kiosk-hub`, or `kiosk hub` (which hands over here).

    kiosk hub --db hub.db --demo --port 8080                      # SQLite, the demo world
    kiosk hub migrate --db postgresql://hub@db.internal:5432/hub  # bring a database up to date
    kiosk hub --db postgresql://hub@db.internal:5432/hub --workers 4

`--db` takes a SQLite file or a database URL. A hub started on a database that is behind
refuses to start and names `kiosk hub migrate`; a new SQLite file and `--demo` on an empty
database are set up in place. Exit codes: 0 ok, 2 usage, configuration or database.

Admin clients and secure cards (no secret is ever taken from the command line):

    kiosk hub admin add shopper-app --scope phone-keys --secret-file app.secret  # 0600, new file
    kiosk hub admin add card-desk --scope cards          # the secret printed once on stdout
    kiosk hub admin list
    kiosk hub admin revoke shopper-app
    kiosk hub card revoke 04C0FFEE424D01                 # kiosks are told to forget its shopper

Brands (hub/brandcli.py, docs/brand-feeds.md): `kiosk hub brand create --db DB --id ID --name N`,
`kiosk hub key|import|code|devices|device|client ... --hub URL --key-file PATH`.

The transitional single admin token (phone-keys scope only) is read from --admin-token-file
or $KIOSK_HUB_ADMIN_TOKEN. Secure-card keys are sealed under the card key from
$KIOSK_HUB_CARD_KEY_FILE or $KIOSK_HUB_CARD_KEY (SQLite: <db>.cardkey, made if new).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEMO_CODE = "DEMO"
BRAND_WORDS = ("brand", "key", "import", "code", "devices", "device", "client")  # hub/brandcli.py


def parser() -> argparse.ArgumentParser:
    # allow_abbrev=False: `--admin-token X` must not pass for `--admin-token-file X`
    p = argparse.ArgumentParser(prog="kiosk hub", description="run the reference hub (API v1)", allow_abbrev=False,
                                epilog="also: `kiosk hub admin --help` (admin clients), "
                                       "`kiosk hub card --help` (revoke a secure card); brands: "
                                       "`kiosk hub brand|key|import|code|devices|device|client --help` "
                                       "(docs/brand-feeds.md)")
    p.add_argument("action", nargs="?", choices=["serve", "migrate"], default="serve")
    p.add_argument("--db", help="a SQLite file or postgresql://user@host:port/db "
                                "(default: $KIOSK_HUB_DB, else hub.db in the kiosk's data dir)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, default=1, help="hub processes on this port (default 1)")
    p.add_argument("--demo", action="store_true", help="load the demo world (into an empty database) and serve "
                                                     "its reference web shop next to the hub")
    p.add_argument("--shop-port", type=int, help="with --demo: the demo web shop's loopback port (default PORT+1)")
    p.add_argument("--admin-token-file", help="a file holding the transitional admin token (phone-keys scope "
                                              "only; or $KIOSK_HUB_ADMIN_TOKEN); prefer `kiosk hub admin add`")
    p.add_argument("--card-key-file", help="a file holding the 64-hex-digit key that seals secure-card keys "
                                           "(or $KIOSK_HUB_CARD_KEY_FILE, $KIOSK_HUB_CARD_KEY; SQLite: <db>.cardkey)")
    p.add_argument("--public-url", help="the address shoppers open the hub's pages at, https://host (the cards' id "
                                        "host; passkeys belong to it; or $KIOSK_HUB_PUBLIC_URL; default "
                                        "http://localhost:PORT)")
    return p


def _fail(message: str) -> int:
    print(f"hub: {message}", file=sys.stderr)
    return 2


def manage_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiosk hub", description="manage admin clients and secure cards",
                                allow_abbrev=False)
    p.add_argument("--db", help="a SQLite file or postgresql://user@host:port/db (default: $KIOSK_HUB_DB)")
    groups = p.add_subparsers(dest="group", required=True)
    admin = groups.add_parser("admin", allow_abbrev=False, help="admin clients (a shopper app's back end, a brand's tooling)")
    admin.add_argument("--db", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    verbs = admin.add_subparsers(dest="verb", required=True)
    add = verbs.add_parser("add", allow_abbrev=False, help="create a client; its secret is written once (never stored)")
    add.add_argument("name")
    add.add_argument("--scope", action="append", required=True, choices=["phone-keys", "cards"],
                     help="what it may do (repeat for several)")
    add.add_argument("--secret-file", help="write the secret to this new file (mode 0600) instead of stdout")
    add.add_argument("--db", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    for verb, text in (("list", "list clients (never their secrets)"), ("revoke", "revoke a client for good")):
        v = verbs.add_parser(verb, allow_abbrev=False, help=text)
        if verb == "revoke":
            v.add_argument("name")
        v.add_argument("--db", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    card = groups.add_parser("card", allow_abbrev=False, help="secure cards (NTAG 424 DNA)")
    card.add_argument("--db", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    cverbs = card.add_subparsers(dest="verb", required=True)
    rv = cverbs.add_parser("revoke", allow_abbrev=False, help="revoke a card by its UID (answered like an unknown card)")
    rv.add_argument("uid", help="the card's 7-byte UID, 14 hex digits")
    rv.add_argument("--db", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return p


def _secret_file(path: str) -> tuple[int | None, str]:
    """A new file only its owner reads, opened for the secret: (fd, "") or (None, why not)."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), ""
    except FileExistsError:
        return None, f"{path} exists already; the secret goes only into a new file"
    except OSError as exc:
        return None, f"cannot create {path}: {exc.strerror}"


def manage(argv: list[str], default_db: Path | None = None) -> int:
    args = manage_parser().parse_args(argv)
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from hub import admin, credentials, migrations
    from hub.store import HubFailure, HubStore, safe_url

    db = args.db or os.environ.get("KIOSK_HUB_DB") or str(default_db or "hub.db")
    if "://" not in db and not Path(db).exists():
        return _fail(f"no database at {db}")
    try:
        store = HubStore(db, migrate=False)
    except migrations.SchemaBehind as exc:
        return _fail(str(exc))
    except (DBAPIError, SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0][:200] if str(exc) else type(exc).__name__
        return _fail(f"cannot open the database {safe_url(db)}: {reason}")
    try:
        if args.group == "admin" and args.verb == "add":
            scopes = ", ".join(sorted(set(args.scope)))
            fd, why = _secret_file(args.secret_file) if args.secret_file else (None, "")
            if why:
                return _fail(why)
            try:
                secret = admin.add_client(store, args.name, args.scope)
            except ValueError as exc:
                if fd is not None:
                    os.close(fd)
                    os.unlink(args.secret_file)
                return _fail(str(exc))
            if fd is not None:
                with os.fdopen(fd, "w") as f:
                    f.write(secret + "\n")
                print(f"hub: admin client {args.name} ({scopes}); secret written to {args.secret_file}", file=sys.stderr)
            else:
                print(f"hub: admin client {args.name} ({scopes}); its secret, shown this once "
                      "(send it as `Authorization: Bearer <secret>`):", file=sys.stderr)
                print(secret)
            return 0
        if args.group == "admin" and args.verb == "list":
            for c in admin.list_clients(store):
                print(f"{c['id']}\t{','.join(c['scopes'])}\t{'revoked' if c['revoked'] else 'active'}")
            return 0
        if args.group == "admin" and args.verb == "revoke":
            if not admin.revoke_client(store, args.name):
                return _fail(f"no admin client named {args.name!r}")
            print(f"hub: admin client {args.name} revoked", file=sys.stderr)
            return 0
        try:
            uid = bytes.fromhex(args.uid)
        except ValueError:
            uid = b""
        if len(uid) != 7:
            return _fail("a card UID is 14 hex digits")
        try:
            shopper_id = credentials.revoke_sun_card(store, uid)
        except HubFailure as exc:
            return _fail(exc.detail)
        print(f"hub: card {uid.hex().upper()} of {shopper_id} revoked; kiosks forget it at their next sync",
              file=sys.stderr)
        return 0
    finally:
        store.close()


def _first_word(argv: list[str]) -> str:
    """The first positional word (options that take a value skipped)."""
    takes_value = {"--db", "--host", "--port", "--workers", "--admin-token-file", "--card-key-file",
                   "--hub", "--key", "--key-file", "--brand", "--id", "--name", "--default-language", "--store",
                   "--expires", "--batch-size"}
    i = 0
    while i < len(argv):
        if argv[i] in takes_value:
            i += 2
        elif argv[i].startswith("-"):
            i += 1
        else:
            return argv[i]
    return ""


def main(argv: list[str] | None = None, default_db: Path | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if _first_word(argv) in ("admin", "card"):
        return manage(argv, default_db)
    if _first_word(argv) in BRAND_WORDS:
        from hub import brandcli
        return brandcli.main(argv, default_db)
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
    if args.card_key_file:  # the workers read it from their environment (never the key itself on argv)
        if not Path(args.card_key_file).is_file():
            return _fail(f"no card key file at {args.card_key_file}")
        os.environ["KIOSK_HUB_CARD_KEY_FILE"] = str(Path(args.card_key_file).resolve())
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
        from hub import demo as demo_world
        print(f"hub: demo world loaded; enrollment code {DEMO_CODE!r}; `kiosk demo-cards` lists the cards",
              file=sys.stderr)
        print(f"hub: demo brand key of lotus (fleet page http://{args.host}:{args.port}/brand, `kiosk hub import`): "
              f"{demo_world.brand_key('lotus')} (a demo world's keys are public)", file=sys.stderr)
    public_url = args.public_url or os.environ.get("KIOSK_HUB_PUBLIC_URL") or f"http://localhost:{args.port}"
    try:
        from hub.passkeys import RelyingParty
        RelyingParty.from_url(public_url)
    except ValueError as exc:
        return _fail(str(exc))
    print(f"hub: shoppers' pages at {public_url}/me (a card opens {public_url}/s/<its token>)", file=sys.stderr)
    if args.demo:
        print(f"hub: a demo shopper's page: {public_url}/s/{demo_world.token_for(0)} (set it up with a passkey)",
              file=sys.stderr)
    shop = None
    if args.demo:  # the demo brand's web shop, a client of this hub (it registers once the hub answers)
        from hub.demo_shop import DemoShop
        try:
            shop = DemoShop(public_url, port=args.shop_port or args.port + 1).start()
            print(f"hub: the demo web shop of Lotus & Linen: {shop.url} (sign in with the shopper profile)",
                  file=sys.stderr)
        except RuntimeError as exc:  # its port taken: the hub runs without it
            print(f"hub: {exc} (choose another with --shop-port)", file=sys.stderr)
    try:
        serve(db, args.host, args.port, workers=args.workers, admin_token=admin_token, public_url=public_url)
    except KeyboardInterrupt:
        return 130
    finally:
        if shop is not None:
            shop.stop()
    return 0
