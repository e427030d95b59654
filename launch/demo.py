"""The demo, wired: an embedded hub on SQLite with the demo world, the reference web shop
beside it, a kiosk enrolled with the demo code on a simulated reader, and the demo bar's taps
(keys 1-8 shopper cards, P a product, S the staff badge, T the technician badge, G garbage;
PIN 246813). The only module that hands the hub's demo data and the driver's tags to the UI.
"""
from __future__ import annotations

import itertools
import sys
import tempfile
from pathlib import Path

import ndef

from drivers.base import TYPE2, UID_ONLY, TagRead

DEMO_CODE = "DEMO"
GARBAGE = TagRead("simulated", TYPE2, uid=b"\x04" * 7, ndef=b"\xd1\x01\x01\xff")


def uri_read(uri: str) -> TagRead:
    return TagRead("simulated", TYPE2, uid=bytes.fromhex("04d3e40000000a"),
                   ndef=b"".join(ndef.message_encoder([ndef.UriRecord(uri)])))


def demo_taps() -> list[tuple[str, str, object]]:
    """The demo bar's buttons: (label, key, what a press presents: a TagRead or a callable
    returning one). Shopper cards 1-8, then a product (the next of a few), staff, technician, garbage."""
    from hub import demo

    cards = [c for c in demo.demo_cards() if c["kind"] == "shopper"][:8]
    taps: list[tuple[str, str, object]] = [(f"{n + 1}: {c['name']}", str(n + 1), uri_read(c["uri"]))
                                           for n, c in enumerate(cards)]
    products = itertools.cycle([uri_read(p["uri"]) for p in demo.demo_products(limit=40)[::3]])
    badges = {c["kind"]: TagRead("simulated", UID_ONLY, uid=bytes.fromhex(c["uid"]))
              for c in demo.demo_cards() if c["kind"] != "shopper"}
    return taps + [("P: product", "p", lambda: next(products)), ("S: staff", "s", badges["staff"]),
                   ("T: tech", "t", badges["technician"]), ("G: garbage", "g", GARBAGE)]


def run_demo(config_file, data_dir, max_seconds: float | None = None, screenshot: str | None = None) -> int:
    from hub.app import HubSettings
    from hub.demo import DEMO_PIN, token_for
    from hub.demo import demo_cards as world_cards
    from hub.demo_shop import DemoShop
    from hub.server import EmbeddedHub
    from kiosk.app import ensure_enrolled
    from kiosk.config import load_config
    from kiosk.staff import hash_pin
    from ui.app import run_kiosk

    data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="kiosk-demo-"))
    config = load_config(config_file, overrides={"data_dir": data_dir, "reader": "simulated"})
    if not config.technician_pin_hash:  # the demo technician PIN, like the demo badges' (README)
        config = config.replace(technician_pin_hash=hash_pin(DEMO_PIN))
    hub = EmbeddedHub(HubSettings(db_path=config.data_dir / "hub.db", demo=True)).start()
    shop = None
    try:
        first = next(c for c in world_cards() if c["kind"] == "shopper")
        print(f"demo: a shopper's own page (the demo card of {first['name']}): open "
              f"{hub.settings.public_url}/s/{token_for(0)} in a browser on this machine and set it up "
              f"with a passkey; later visits sign in at {hub.settings.public_url}/me", file=sys.stderr)
        shop = DemoShop(hub.settings.public_url).start()
        print(f"demo: the web shop of Lotus & Linen (saves to the same wishlist): open {shop.url}", file=sys.stderr)
        ensure_enrolled(config, hub.url, DEMO_CODE)
        taps = demo_taps()
        return run_kiosk(config.replace(hub_url=hub.url), demo=True, max_seconds=max_seconds, screenshot=screenshot,
                         below=lambda service: _bar(service, taps))
    finally:
        if shop is not None:
            shop.stop()
        hub.stop()


def _bar(service, taps):
    from ui.demo import DemoBar
    return DemoBar(service.reader.present, taps)
