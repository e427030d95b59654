"""The fleet commands of `kiosk hub`: enrollment codes for new kiosks, the brand's web shops
and apps (OAuth clients), its kiosks with their last heartbeat, and taking a kiosk out.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from urllib.parse import quote

from hub.brandcli_client import BrandClient, CliError, _age, _done, _when, clean, table


def duration(text: str) -> int:
    m = re.fullmatch(r"\s*([0-9]{1,7})\s*([smhd]?)\s*", text or "")
    if not m:
        raise argparse.ArgumentTypeError("a duration such as 90m, 12h or 7d")
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def cmd_code(args, client: BrandClient) -> int:
    if args.verb == "create":
        if not 60 <= args.expires <= 90 * 86400:
            raise CliError("--expires must be from 60s to 90d")
        a = client.call("POST", "/v1/brand/enrollment-codes", {"store_code": args.store, "expires_in_s": args.expires})
        if args.json:
            print(json.dumps(a))
        else:
            print(f"code: {a['code']}\nid: {a['id']}\nstore: {clean(a['store_code'])}\nexpires: {_when(a['expires_at'])}")
            print("hub: type the code into the new kiosk (`kiosk enroll --code ...`); it works once", file=sys.stderr)
    elif args.verb == "list":
        codes = client.call("GET", "/v1/brand/enrollment-codes")["codes"]
        if args.json:
            print(json.dumps({"codes": codes}))
        else:
            now = time.time()

            def state(c):
                if c["revoked"]:
                    return "revoked"
                if c["used_by"] and not c["reusable"]:
                    return f"used by {c['used_by']}"
                if c["expires_at"] and c["expires_at"] <= now:
                    return "expired"
                return "reusable" if c["reusable"] else "active"
            print(table(["id", "store", "created", "expires", "state"],
                        [[c["id"], c["store_code"], _when(c["created_at"]), _when(c["expires_at"]) if c["expires_at"]
                          else "never", state(c)] for c in codes]))
    else:
        client.call("DELETE", "/v1/brand/enrollment-codes/" + quote(args.code_id, safe=""))
        _done(args, f"enrollment code {args.code_id} revoked", {"revoked": args.code_id})
    return 0


def cmd_client(args, client: BrandClient) -> int:
    """The brand's web shops and apps as OAuth clients (public clients, PKCE S256)."""
    if args.verb == "create":
        a = client.call("POST", "/v1/brand/clients", {"name": args.name, "redirect_uris": args.redirect_uri,
                                                      "kind": "app" if args.app else "web"})
        if args.json:
            print(json.dumps(a))
        else:
            print(f"client_id: {a['client_id']}\nname: {clean(a['name'])}\nkind: {a['kind']}")
            for uri in a["redirect_uris"]:
                print(f"redirect_uri: {clean(uri)}")
            print("hub: a public client: no secret; it signs shoppers in with PKCE S256 at /oauth/authorize",
                  file=sys.stderr)
    elif args.verb == "list":
        clients = client.call("GET", "/v1/brand/clients")["clients"]
        if args.json:
            print(json.dumps({"clients": clients}))
        else:
            print(table(["client_id", "name", "kind", "created", "state", "redirect URIs"],
                        [[c["client_id"], c["name"], c["kind"], _when(c["created_at"]),
                          "revoked" if c["revoked_at"] else "active", " ".join(c["redirect_uris"])] for c in clients]))
    else:
        client.call("DELETE", "/v1/brand/clients/" + quote(args.client_id, safe=""))
        _done(args, f"client {args.client_id} revoked: its tokens are refused from their next call",
              {"revoked": args.client_id})
    return 0


def cmd_devices(args, client: BrandClient) -> int:
    devices = client.call("GET", "/v1/brand/devices")["devices"]
    if args.json:
        print(json.dumps({"devices": devices}, ensure_ascii=False))
        return 0

    def num(v, unit=""):
        return "-" if v is None else f"{v:g}{unit}" if isinstance(v, (int, float)) else clean(v)
    now = time.time()
    rows = [[d["id"], d["name"], d["store_code"], "revoked" if d["revoked"] else "online" if d["online"] else "offline",
             d.get("version") or "-", d.get("reader_state") or "-", num(d.get("outbox_depth")), num(d.get("parked")),
             _age(d.get("last_sync"), now), num(d.get("clock_skew_s"), "s"), num(d.get("free_disk_mb"), " MB"),
             _age(d.get("last_seen"), now)] for d in devices]
    print(table(["id", "name", "store", "state", "version", "reader", "outbox", "parked", "last sync", "clock skew",
                 "free disk", "last seen"], rows) if rows else "no kiosks enrolled yet")
    return 0


def cmd_device(args, client: BrandClient) -> int:
    client.call("POST", f"/v1/brand/devices/{quote(args.device_id, safe='')}:revoke")
    _done(args, f"kiosk {args.device_id} revoked: its token is refused from its next call", {"revoked": args.device_id})
    return 0
