"""The kiosk core's commands (tap, enroll, status, sync, outbox, tag, doctor), thin over the
library; the `kiosk` command (launch/cli.py) adds the UI's and the hub's. Each command opens
what it needs, calls one thing, and turns a `KioskError` into a message and an exit code
(never a traceback).

Exit codes: 0 ok, 1 a tap or check failed, 2 usage or configuration, 3 hub unavailable.
"""
from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys
import time
from dataclasses import asdict
from pathlib import Path

from kiosk import __version__, logs
from kiosk import errors as E
from kiosk.config import Config, load_config
from kiosk.results import Mode

log = logging.getLogger("kiosk")
DEMO_CODE = "DEMO"


def _config(args, **overrides) -> Config:
    return load_config(args.config, overrides={"data_dir": args.data_dir, **overrides})


# -- kiosk ----------------------------------------------------------------------
def _reads(args) -> list:
    import ndef

    from drivers.base import TYPE2, UID_ONLY, TagRead

    reads = []
    for kind, value in args.taps:
        try:
            if kind == "uri":
                message = b"".join(ndef.message_encoder([ndef.UriRecord(value)]))
                reads.append(TagRead("cli", TYPE2, uid=bytes.fromhex("04c11ac11ac100"), ndef=message))
            elif kind == "uid":
                reads.append(TagRead("cli", UID_ONLY, uid=bytes.fromhex(value)))
            else:
                reads.append(TagRead("cli", TYPE2, uid=bytes.fromhex("04c11ac11ac101"), ndef=bytes.fromhex(value)))
        except ValueError as exc:
            raise E.ConfigError(f"--{kind} {value!r}: {exc}") from None
    return reads


def tap_json(result, language: str = "en", languages: tuple[str, ...] = ("en",)) -> dict:
    """What the screen would show for `result`, its texts in the screen's language: the
    shopper's (when the kiosk offers it), else the kiosk's `language`."""
    from kiosk.catalog import description_in, screen_language, title_in
    from kiosk.results import BadgeResult, ErrorResult, ProductResult, ShopperResult

    view = getattr(result, "view", None)
    lang = screen_language(view.locale, languages, language) if view is not None else language

    def view_json(view):
        return {"shopper": {"id": view.shopper_id, "display_name": view.display_name, "locale": view.locale},
                "language": lang, "source": view.source, "age_s": round(view.age_s, 1), "sharing": view.sharing,
                "hidden_items": view.hidden_items, "visit": view.visit,
                "wishlist": [{"gtin": i.gtin, "title": title_in(i, lang), "description": description_in(i, lang),
                              "brand": i.brand, "brand_name": i.brand_name,
                              "price": i.price, "currency": i.currency, "available_here": i.available_here,
                              "location": i.location, "elsewhere": list(i.elsewhere), "online": i.online,
                              "pending": i.pending} for i in view.wishlist],
                "offers": [{"id": o.offer_id, "title": title_in(o, lang), "kind": o.kind, "personal": o.personal,
                            "valid_from": o.valid_from, "valid_until": o.valid_until}
                           for o in view.offers]}

    if isinstance(result, ShopperResult):
        return {"kind": "shopper", **view_json(result.view), "guest": result.guest, "warning": result.warning or None,
                "error": None}
    if isinstance(result, ProductResult):
        out = {"kind": "product", "gtin": result.gtin, "title": title_in(result, lang),
               "description": description_in(result, lang), "availability": result.availability or None,
               "saved": result.saved, "already_saved": result.already_saved, "available_here": result.available_here,
               "location": result.location, "error": None}
        if result.view:
            out.update(view_json(result.view))
        else:
            out.update({"language": lang, "source": "cache", "shopper": None, "wishlist": [], "offers": []})
        return out
    if isinstance(result, BadgeResult):
        return {"kind": "badge", "role": result.role, "shopper": {"id": result.staff_id,
                "display_name": result.display_name}, "source": "hub", "wishlist": [], "offers": [], "error": None}
    assert isinstance(result, ErrorResult)
    return {"kind": "error", "source": None, "shopper": None, "wishlist": [], "offers": [],
            "error": {"code": result.code, "detail": result.detail, "retry": result.retry}}


def _service(args, hub_url: str | None = None, with_reader: bool = False):
    from kiosk.app import build_service, ensure_enrolled

    config = _config(args, hub_url=hub_url)
    if hub_url:
        ensure_enrolled(config, hub_url, args.code)
    return build_service(config, with_reader=with_reader)


def cmd_tap(args) -> int:
    reads = _reads(args)
    if not reads:
        raise E.ConfigError("give at least one --uri, --uid or --ndef-hex")
    service = _service(args, args.hub)
    failed = False
    try:
        service.prime()
        for read in reads:
            result = service.handle_tag(read)
            if service.mode == Mode.PIN:  # a badge: there is no PIN pad here, the next tap is a shopper's
                service.reset()
            out = tap_json(result, service.config.language, service.config.languages)
            failed |= out["kind"] == "error"
            if args.json:
                print(json.dumps(out, ensure_ascii=False))
            else:
                print(_tap_text(out))
        try:
            service.sync.drain(max_batches=5, honour_backoff=False)
        except E.KioskError as exc:
            log.info("events stay queued: %s", exc)
    finally:
        service.stop()
    return 1 if failed else 0


def _tap_text(out: dict) -> str:
    if out["kind"] == "error":
        return f"error: {out['error']['code']}: {out['error']['detail']}"
    lines = []
    if out["kind"] == "product":
        lines.append(f"product {out['gtin']} {out['title']}: " + ("saved" if out["saved"] else "not saved (no shopper)"))
    if out.get("shopper"):
        lines.append(f"shopper {out['shopper']['display_name']} (from {out['source']}), sharing {out.get('sharing')}")
        for item in out["wishlist"]:
            lines.append(f"  - {item['title'] or item['gtin']} [{item['brand_name'] or item['brand']}] "
                         f"here: {item['available_here']}")
        for offer in out["offers"]:
            lines.append(f"  * {offer['title']}")
    return "\n".join(lines)


def cmd_enroll(args) -> int:
    from kiosk.provisioning import enroll

    config = _config(args)
    identity = enroll(args.hub, args.code, args.name or config.device_name, config.device_file,
                      allow_insecure=config.allow_insecure_hub)
    print(f"enrolled as {identity.device_id} for {identity.brand_name} / {identity.store_name}")
    return 0


def cmd_status(args) -> int:
    service = _service(args)
    try:
        try:
            service.hub.health()
            service.sync.note_online(True)
        except E.HubError as exc:
            service.sync.note_online(False, str(exc))
        status = service.status()
    finally:
        service.stop()
    data = asdict(status)
    data["hub_reachable"] = status.online
    if args.json:
        print(json.dumps(data, ensure_ascii=False, default=str))
    else:
        print(f"hub {status.hub_url}: {'reachable' if status.online else 'unreachable'}")
        if status.device_revoked:
            print(f"THIS KIOSK WAS REMOVED FROM THE FLEET: enroll it again (technician screen, or `kiosk enroll "
                  f"--hub {status.hub_url} --code CODE`). It sends nothing until then; its {status.outbox_depth} "
                  "queued event(s) are kept and go out with the new enrollment")
        elif status.device_refused:
            print(f"DEVICE TOKEN REFUSED by the hub ({status.device_refused}): no shopper profile is shown; "
                  "re-enroll this kiosk (technician screen or `kiosk enroll`)")
        print(f"outbox: {status.outbox_depth} waiting, {status.parked} parked")
        for parked in status.parked_events:
            print(f"  parked {parked['event_id']} {parked['type']}: {parked['reason']}")
        last = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status.last_sync)) if status.last_sync else "never"
        print(f"last sync: {last}; free disk {status.free_disk_bytes // 2**20} MiB"
              + (" (LOW)" if status.low_disk else ""))
    return 0


def cmd_sync(args) -> int:
    service = _service(args)
    try:
        sent = service.sync_now()
        depth = service.outbox.depth()
    finally:
        service.stop()
    print(f"sent {sent['created']} new, {sent['duplicate']} already known, {sent['rejected']} parked; "
          f"{depth} still waiting")
    return 0 if depth == 0 else 3


def cmd_outbox(args) -> int:
    """Parked events: list them, send them again, export them, or (logged) purge them."""
    from kiosk.outbox import Outbox

    outbox = Outbox(_config(args).outbox_path)
    try:
        parked = outbox.parked()
        if args.action == "list":
            print(f"{outbox.depth()} waiting, {len(parked)} parked")
            for p in parked:
                print(f"  {p['event_id']} {p['type']}: {p['reason']}")
        elif args.action == "requeue":
            count = outbox.requeue(args.ids or None)
            print(f"{count} parked event(s) will be sent again")
        elif args.action == "export":
            if not args.file:
                raise E.ConfigError("export needs --file PATH")
            Path(args.file).write_text("".join(json.dumps(p["event"], ensure_ascii=False) + "\n" for p in parked))
            print(f"{len(parked)} parked event(s) written to {args.file}")
        elif args.action == "purge-parked":
            if not args.yes:
                raise E.ConfigError("purging parked events loses them for good: add --yes (export them first)")
            print(f"{outbox.purge_parked()} parked event(s) purged")
    finally:
        outbox.close()
    return 0


def _tag_reader(args):
    import drivers

    config = _config(args)
    spec = args.reader or config.reader
    try:
        from kiosk.provisioning import load_identity
        kiosk_id = load_identity(config.device_file)[0].device_id
    except E.KioskError:
        kiosk_id = "tag-tool"
    return drivers.open_reader(spec, kiosk_id=kiosk_id), config


def _print_tag(read, config, args, action: str) -> None:
    from kiosk.tagtool import describe

    info = describe(read, config.id_host)
    info["timings_ms"] = {k: round(v, 2) for k, v in read.timings.items()} if read.timings else {}
    if args.json:
        print(json.dumps({"action": action, **info}, ensure_ascii=False))
        return
    print(f"{action}: {info['tag_type'] or info['technology']} ({info['technology']}), UID {info['uid'] or '-'}, "
          f"read in {info['read_ms']} ms")
    print(f"  meaning: {info['meaning']} {info['detail']}")
    for line in info["records"]:
        print(f"  record: {line}")
    for name, ms in info["timings_ms"].items():
        print(f"  timing: {name} {ms} ms")


def cmd_tag(args) -> int:
    """Technician tag tools on a real reader: read one tag, or write a card / product tag."""
    from drivers.base import ReaderError, ReaderTimeout, ReaderUnavailable
    from kiosk import tagtool

    reader, config = _tag_reader(args)
    try:
        if args.action == "read":
            print(f"Hold a tag on the reader ({args.timeout:g} s)...", file=sys.stderr)
            _print_tag(reader.read_once(timeout=args.timeout), config, args, "read")
            return 0
        chosen = [x for x in (args.token, args.uri, args.gtin) if x]
        if len(chosen) != 1:
            raise E.ConfigError("tag write needs exactly one of --token, --uri or --gtin")
        try:
            if args.token:
                message = tagtool.shopper_card_message(args.token, config.id_host)
            elif args.gtin:
                message = tagtool.product_message(args.gtin)
            else:
                message = tagtool.uri_message(args.uri)
        except ValueError as exc:
            raise E.ConfigError(str(exc)) from None
        print(f"Hold the tag to write on the reader ({args.timeout:g} s)"
              + (": it will be locked for good" if args.lock else "") + "...", file=sys.stderr)
        _print_tag(reader.write_ndef(message, lock=args.lock, timeout=args.timeout), config, args,
                   "written and locked" if args.lock else "written")
        return 0
    except ReaderTimeout:
        print(f"kiosk: no tag was presented within {args.timeout:g} s", file=sys.stderr)
        return 1
    except ReaderUnavailable as exc:
        print(f"kiosk: the reader cannot be used: {exc} (try `kiosk doctor`)", file=sys.stderr)
        return 2
    except ReaderError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 1
    finally:
        reader.stop()


def cmd_doctor(args) -> int:
    """The readers each stack sees, and the known failures with the exact fix for each."""
    from kiosk import doctor

    try:
        config = _config(args)
        spec, data_dir = config.reader, config.data_dir
    except E.ConfigError:
        spec, data_dir = None, None
    checks = doctor.run_checks(args.reader or spec, production=not args.development, data_dir=data_dir)
    print(doctor.to_json(checks) if args.json else doctor.format_human(checks))
    return doctor.exit_code(checks)


# -- wiring ---------------------------------------------------------------------
def parser(extend=None) -> argparse.ArgumentParser:
    """The core's commands; `extend(subparsers)` adds those of the layers above (launch/cli.py:
    hub, demo, run, demo-cards), which this package never imports."""
    p = argparse.ArgumentParser(prog="kiosk", description="NFC check-in kiosk")
    p.add_argument("--version", action="version", version=__version__)
    p.add_argument("--config", help="TOML config file (default: the platform config dir)")
    p.add_argument("--data-dir", help="where the kiosk keeps its outbox, cache and identity")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    if extend is not None:
        extend(sub)
    s = sub.add_parser("tap", help="tap tags through the full service, headless")
    s.add_argument("--uri", dest="taps", action="append", type=lambda v: ("uri", v), default=[])
    s.add_argument("--uid", dest="taps", action="append", type=lambda v: ("uid", v))
    s.add_argument("--ndef-hex", dest="taps", action="append", type=lambda v: ("ndef-hex", v))
    s.add_argument("--hub", help="hub URL (enrolls with --code when this kiosk has no identity yet)")
    s.add_argument("--code", default=DEMO_CODE, help="enrollment code (default: the demo code)")
    s.add_argument("--json", action="store_true", help="one JSON object per tap, a line each")
    s.set_defaults(func=cmd_tap)

    s = sub.add_parser("enroll", help="enroll this kiosk with a hub")
    s.add_argument("--hub", required=True), s.add_argument("--code", required=True), s.add_argument("--name")
    s.set_defaults(func=cmd_enroll)
    s = sub.add_parser("status", help="outbox depth, parked events, last sync, hub reachability")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)
    sub.add_parser("sync", help="drain the outbox now").set_defaults(func=cmd_sync)
    s = sub.add_parser("outbox", help="parked events: list, requeue, export, purge-parked")
    s.add_argument("action", choices=["list", "requeue", "export", "purge-parked"])
    s.add_argument("ids", nargs="*", help="event ids (requeue; default all parked)")
    s.add_argument("--file"), s.add_argument("--yes", action="store_true")
    s.set_defaults(func=cmd_outbox)
    s = sub.add_parser("tag", help="technician tag tools: read a tag, write a shopper card or product tag")
    s.add_argument("action", choices=["read", "write"])
    s.add_argument("--reader", help="reader spec (default: the configured reader)")
    s.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for a tag")
    s.add_argument("--token", help="write: a shopper card for this token")
    s.add_argument("--gtin", help="write: a product tag (GS1 Digital Link) for this GTIN")
    s.add_argument("--uri", help="write: any URI")
    s.add_argument("--lock", action="store_true", help="write: make the tag read-only for good")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_tag)
    s = sub.add_parser("doctor", help="diagnose readers, drivers and permissions (exit non-zero on failure)")
    s.add_argument("--json", action="store_true"), s.add_argument("--reader", help="reader spec to check")
    s.add_argument("--development", action="store_true", help="a test machine: the virtual reader is only a warning")
    s.set_defaults(func=cmd_doctor)
    return p


def main(argv: list[str] | None = None, extend=None) -> int:
    p = parser(extend)
    args, extra = p.parse_known_args(argv)
    if args.command == "hub":  # everything after `hub` is the hub's own command line
        args.hub_args = extra + args.hub_args
    elif extra:
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    logs.configure(args.verbose)
    try:
        return args.func(args)
    except E.HubUnavailable as exc:
        print(f"kiosk: {exc.detail}", file=sys.stderr)
        return 3
    except (E.ConfigError, E.NotEnrolled) as exc:
        print(f"kiosk: {exc.detail}", file=sys.stderr)
        return 2
    except E.KioskError as exc:
        print(f"kiosk: {exc.detail}", file=sys.stderr)
        return 1
    except (OSError, sqlite3.Error) as exc:  # a disk, permission or file problem: say which
        print(f"kiosk: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
