"""The brand commands of `kiosk hub`: a brand's account and keys, its feed files, its fleet.

    kiosk hub brand create --db hub.db --id lotus --name "Lotus & Linen"   # prints `key: bk_...`
    kiosk hub import inventory stock.csv --hub https://hub.example --key-file lotus.key
    kiosk hub code create --hub https://hub.example --key-file lotus.key --store hcm --expires 7d
    kiosk hub devices --hub https://hub.example --key-file lotus.key
    kiosk hub client create --hub https://hub.example --key-file lotus.key --name "Web shop" \
        --redirect-uri https://shop.example/callback          # prints `client_id: cl_...`

`brand create` (and `key ... --db DB --brand ID`) are the operator's, on the database itself.
Everything else is a client of the brand API (hub/brand_api.py), exactly as a retailer's own
script would be: it never opens the database. The key comes from --key (visible to anyone who
can run `ps` on this machine), --key-file or $KIOSK_HUB_BRAND_KEY. Feed files are untrusted:
a file that cannot be read whole (broken UTF-8, a header the feed does not know, bad JSON,
over 512 MiB) is refused before anything is sent. Exit codes: 0 ok, 1 a row or the file was
refused (or the hub refused the call), 2 usage, database, key or connection problems.
docs/brand-feeds.md has the file formats.

Here: `brand` and `key`, the parser and the dispatch. `import` is hub/brandcli_import.py (its
files read and checked by hub/brandcli_feeds.py); `code`, `client`, `devices` and `device` are
hub/brandcli_fleet.py; all of them share hub/brandcli_client.py (errors, terminal text, the
brand API client).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from urllib.parse import quote

from hub.brandcli_client import BrandClient, CliError, _done, _when, clean, table
from hub.brandcli_feeds import KINDS, MAX_ROWS
from hub.brandcli_fleet import cmd_client, cmd_code, cmd_device, cmd_devices, duration
from hub.brandcli_import import Progress, run_import  # noqa: F401  (re-exported)


# -- the operator's commands, on the database ------------------------------------------
def open_store(db: str, create: bool = False):
    """The hub's database, as `kiosk hub admin` opens it; `create`: a new SQLite file or an
    empty database is set up in place (a fresh hub is made with `brand create`)."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from hub import migrations
    from hub.store import HubStore, safe_url

    new_file = "://" not in db and not Path(db).exists()
    if new_file and not create:
        raise CliError(f"no database at {db}")
    try:
        try:
            return HubStore(db, migrate=new_file)
        except migrations.SchemaBehind as exc:
            if create and migrations.current(HubStore.engine_for(db)) is None:
                return HubStore(db, migrate=True)
            raise CliError(str(exc)) from None
    except (DBAPIError, SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise CliError(f"cannot open the database {safe_url(db)}: {reason}") from None


def _db(args, default_db: Path | None) -> str:
    return args.db or os.environ.get("KIOSK_HUB_DB") or str(default_db or "hub.db")


def cmd_brand_create(args, default_db: Path | None = None) -> int:
    from hub import brands
    store = open_store(_db(args, default_db), create=True)
    try:
        try:
            key_id, key = brands.create_brand(store, args.id, args.name, args.default_language)
        except ValueError as exc:
            raise CliError(str(exc), 1) from None
    finally:
        store.close()
    if args.json:
        print(json.dumps({"brand": args.id, "key_id": key_id, "key": key}))
    else:
        print(f"hub: brand {args.id} ({clean(args.name)}) created; its admin key {key_id}, shown this once "
              "(send it as `Authorization: Bearer <key>`; keep it in a 0600 file for --key-file):", file=sys.stderr)
        print(f"key: {key}")
    return 0


def _print_keys(keys: list[dict], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"keys": keys}))
        return
    print(table(["id", "name", "created", "last used", "state"],
                [[k["id"], k["name"], _when(k["created_at"]), _when(k["last_used_at"]),
                  "revoked" if k["revoked"] else "active"] for k in keys]))


def _print_new_key(key_id: str, key: str, name: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"id": key_id, "key": key, "name": name}))
    else:
        print(f"hub: key {key_id} ({clean(name)}), shown this once:", file=sys.stderr)
        print(f"key: {key}")


def cmd_key(args, default_db: Path | None = None) -> int:
    if args.db or args.brand:
        if not args.brand or args.hub:
            raise CliError("the operator's way names the database and the brand: --db DB --brand ID (no --hub)")
        from hub import brands
        from hub.store import HubFailure
        store = open_store(_db(args, default_db))
        try:
            if store.one("SELECT 1 FROM brands WHERE id=?", (args.brand,)) is None:
                raise CliError(f"no brand {clean(args.brand)!r} in this database", 1)
            if args.verb == "create":
                try:
                    key_id, key = brands.create_key(store, args.brand, args.name)
                except ValueError as exc:
                    raise CliError(str(exc), 1) from None
                _print_new_key(key_id, key, args.name, args.json)
            elif args.verb == "list":
                _print_keys(brands.list_keys(store, args.brand), args.json)
            else:
                try:
                    brands.revoke_key(store, args.brand, args.key_id)
                except HubFailure as exc:
                    raise CliError(exc.detail, 1) from None
                _done(args, f"key {args.key_id} revoked", {"revoked": args.key_id})
        finally:
            store.close()
        return 0
    client = _client(args)
    if args.verb == "create":
        a = client.call("POST", "/v1/brand/keys", {"name": args.name})
        _print_new_key(a["id"], a["key"], a["name"], args.json)
    elif args.verb == "list":
        _print_keys(client.call("GET", "/v1/brand/keys")["keys"], args.json)
    else:
        client.call("DELETE", "/v1/brand/keys/" + quote(args.key_id, safe=""))
        _done(args, f"key {args.key_id} revoked", {"revoked": args.key_id})
    return 0


# -- parsing and dispatch ---------------------------------------------------------------
def _client(args) -> BrandClient:
    if not args.hub:
        raise CliError("--hub URL is required (the hub's address, such as https://hub.example)")
    key = args.key
    if not key and args.key_file:
        try:
            key = Path(args.key_file).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read the key file {clean(args.key_file)}: {getattr(exc, 'strerror', exc)}") from None
        key = key.removeprefix("key:").strip()
    key = (key or os.environ.get("KIOSK_HUB_BRAND_KEY", "")).strip()
    if not key:
        raise CliError("a brand key is required: --key-file PATH, $KIOSK_HUB_BRAND_KEY or --key KEY")
    if not key.isascii() or not key.isprintable() or len(key) > 128:
        raise CliError("that is not a brand key")
    return BrandClient(args.hub, key)


def parser() -> argparse.ArgumentParser:
    hub = argparse.ArgumentParser(add_help=False)
    hub.add_argument("--hub", help="the hub's URL (https://...)")
    hub.add_argument("--key", help="the brand key (visible in `ps` to other users: prefer --key-file)")
    hub.add_argument("--key-file", help="a file holding the brand key (or $KIOSK_HUB_BRAND_KEY)")
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--json", action="store_true", help="one JSON object on stdout")

    p = argparse.ArgumentParser(prog="kiosk hub", description="brands: accounts, keys, feed files, kiosk fleet",
                                allow_abbrev=False, epilog="docs/brand-feeds.md has the file formats; "
                                "exit codes: 0 ok, 1 refused, 2 usage, database, key or connection")
    p.add_argument("--db", help=argparse.SUPPRESS)
    groups = p.add_subparsers(dest="group", required=True)

    brand = groups.add_parser("brand", help="create a brand (the operator, on the database)", allow_abbrev=False)
    bverbs = brand.add_subparsers(dest="verb", required=True)
    create = bverbs.add_parser("create", parents=[out], allow_abbrev=False,
                               help="a new brand and its first admin key (printed once)")
    create.add_argument("--db", default=argparse.SUPPRESS,
                        help="a SQLite file (made if new) or postgresql://... (default: $KIOSK_HUB_DB)")
    create.add_argument("--id", required=True, help="2-32 lowercase letters and digits, starting with a letter")
    create.add_argument("--name", required=True)
    create.add_argument("--default-language", default="en", help="the language of title/description (default en)")

    key = groups.add_parser("key", help="a brand's API keys", allow_abbrev=False)
    kverbs = key.add_subparsers(dest="verb", required=True)
    for verb, text in (("create", "a new key (printed once)"), ("list", "the keys (never the keys themselves)"),
                       ("revoke", "revoke a key by its id (never the brand's last active one)")):
        v = kverbs.add_parser(verb, parents=[hub, out], allow_abbrev=False, help=text,
                              description=text + "; as the brand (--hub, --key) or the operator (--db, --brand)")
        v.add_argument("--db", default=argparse.SUPPRESS, help="the operator: the hub's database (with --brand)")
        v.add_argument("--brand", help="with --db: the brand's id")
        if verb == "create":
            v.add_argument("--name", default="key", help="what the key is for (erp, pos, ...)")
        if verb == "revoke":
            v.add_argument("key_id", help="key-xxxxxxxx")

    imp = groups.add_parser("import", parents=[hub, out], allow_abbrev=False, help="send a feed file (CSV or JSON)",
                            description="send a products, stores, inventory or offers file to the hub's brand API")
    imp.add_argument("kind", choices=list(KINDS))
    imp.add_argument("file")
    imp.add_argument("--snapshot", action="store_true",
                     help="inventory: each store's rows are its whole stock (rows absent become 0)")
    imp.add_argument("--batch-size", type=int, default=MAX_ROWS, choices=range(1, MAX_ROWS + 1),
                     metavar=f"1..{MAX_ROWS}", help=f"rows in one call (default {MAX_ROWS})")

    code = groups.add_parser("code", help="enrollment codes for new kiosks", allow_abbrev=False)
    cverbs = code.add_subparsers(dest="verb", required=True)
    cc = cverbs.add_parser("create", parents=[hub, out], allow_abbrev=False, help="a one-time code for a store")
    cc.add_argument("--store", required=True, help="the store's code")
    cc.add_argument("--expires", type=duration, default=7 * 86400, help="valid for (60s..90d; default 7d)")
    cverbs.add_parser("list", parents=[hub, out], allow_abbrev=False, help="the brand's codes (never the codes)")
    cr = cverbs.add_parser("revoke", parents=[hub, out], allow_abbrev=False, help="revoke a code by its id")
    cr.add_argument("code_id", help="code-xxxxxxxxxx")

    oc = groups.add_parser("client", help="the brand's web shops and apps (OAuth clients)", allow_abbrev=False)
    overbs = oc.add_subparsers(dest="verb", required=True)
    ocreate = overbs.add_parser("create", parents=[hub, out], allow_abbrev=False,
                                help="register a web shop or app; prints its client_id")
    ocreate.add_argument("--name", required=True, help="what the shopper sees on the consent screen")
    ocreate.add_argument("--redirect-uri", required=True, action="append",
                         help="an exact redirect URI (repeat for more, up to 5)")
    ocreate.add_argument("--app", action="store_true", help="a native app (may use com.example.app:/cb URIs)")
    overbs.add_parser("list", parents=[hub, out], allow_abbrev=False, help="the brand's clients")
    orevoke = overbs.add_parser("revoke", parents=[hub, out], allow_abbrev=False,
                                help="revoke a client (its tokens are refused at once)")
    orevoke.add_argument("client_id", help="cl_...")

    groups.add_parser("devices", parents=[hub, out], allow_abbrev=False, help="the brand's kiosks, last heartbeat")
    device = groups.add_parser("device", help="one kiosk", allow_abbrev=False)
    dverbs = device.add_subparsers(dest="verb", required=True)
    dr = dverbs.add_parser("revoke", parents=[hub, out], allow_abbrev=False,
                           help="take a kiosk out of the fleet (its token is refused at once)")
    dr.add_argument("device_id")
    return p


def main(argv: list[str] | None = None, default_db: Path | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        if args.group == "brand":
            return cmd_brand_create(args, default_db)
        if args.group == "key":
            return cmd_key(args, default_db)
        client = _client(args)
        if args.group == "import":
            return run_import(args, client)
        if args.group == "code":
            return cmd_code(args, client)
        if args.group == "devices":
            return cmd_devices(args, client)
        if args.group == "client":
            return cmd_client(args, client)
        return cmd_device(args, client)
    except CliError as exc:
        print(f"hub: {clean(exc, 600)}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("hub: interrupted; re-running the same command is safe", file=sys.stderr)
        return 130
