"""The `kiosk` command: the kiosk core's commands (kiosk/cli.py) and the ones that need the
layers above it: `run` and `demo` (the Kivy UI), `hub` (the reference hub's own command line)
and `demo-cards` (the demo world's cards). Exit codes as kiosk/cli.py documents them.
"""
from __future__ import annotations

import argparse
import json
import sys

from kiosk import cli as core_cli
from kiosk import errors as E


def cmd_hub(args) -> int:
    """`kiosk hub ...` is the hub's own command (hub/cli.py); the kiosk config gives the default file."""
    from hub.cli import main as hub_main

    return hub_main(args.hub_args, default_db=core_cli._config(args).data_dir / "hub.db")


def cmd_demo_cards(args) -> int:
    from hub import demo

    cards, products = demo.demo_cards(), demo.demo_products(limit=args.products)
    if args.json:
        print(json.dumps({"cards": cards, "products": products}, ensure_ascii=False, indent=2))
        return 0
    print("Shopper cards (NDEF URI on an NTAG213):")
    for card in cards:
        if card["kind"] == "shopper":
            print(f"  {card['name']:<12} {card['locale']}  {card['uri']}")
    print("Staff and technician badges (UID-only cards, PIN %s):" % demo.DEMO_PIN)
    for card in cards:
        if card["kind"] != "shopper":
            print(f"  {card['name']:<20} uid {card['uid']}")
    print(f"Products (first {len(products)}; GS1 Digital Link):")
    for product in products:
        print(f"  {product['title']:<28} {product['uri']}")
    return 0


def cmd_demo(args) -> int:
    from launch.demo import run_demo

    return run_demo(args.config, args.data_dir, max_seconds=args.max_seconds, screenshot=args.screenshot)


def cmd_run(args) -> int:
    from kiosk.app import pinned_hub_url
    from kiosk.hubclient import transport_problem
    from kiosk.provisioning import load_identity
    from ui.app import run_kiosk

    config = core_cli._config(args, fullscreen=True)
    try:  # a token pinned to another hub, or a plain http:// hub: refuse before the screen comes up
        url = pinned_hub_url(config, load_identity(config.device_file)[1])
        problem = transport_problem(url, config.allow_insecure_hub)
        if problem:
            raise E.ConfigError(problem)
    except E.NotEnrolled:
        pass  # the technician screen enrolls it
    return run_kiosk(config)


def extend(sub) -> None:
    s = sub.add_parser("hub", help="run the reference hub (`kiosk hub --help` for its options)", add_help=False)
    s.add_argument("hub_args", nargs=argparse.REMAINDER)
    s.set_defaults(func=cmd_hub)
    s = sub.add_parser("demo", help="the kiosk UI with an embedded demo hub and a simulated reader")
    s.add_argument("--max-seconds", type=float, help="quit after this long (for scripted runs)")
    s.add_argument("--screenshot", help="save a screenshot of the first shopper screen here")
    s.set_defaults(func=cmd_demo)
    sub.add_parser("run", help="the kiosk, full screen and locked down").set_defaults(func=cmd_run)
    s = sub.add_parser("demo-cards", help="the demo world's cards and product tags")
    s.add_argument("--json", action="store_true"), s.add_argument("--products", type=int, default=10)
    s.set_defaults(func=cmd_demo_cards)


def parser() -> argparse.ArgumentParser:
    return core_cli.parser(extend)


def main(argv: list[str] | None = None) -> int:
    return core_cli.main(argv, extend=extend)


if __name__ == "__main__":
    sys.exit(main())
