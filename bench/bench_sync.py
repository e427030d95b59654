"""Sync throughput on loopback: drain 10,000 queued events batched vs one request per event
(same run, same hub), and hub ingest with 50 kiosks posting at once. Prints medians.

    .venv/bin/python bench/bench_sync.py [--events 10000] [--runs 3]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kiosk import api  # noqa: E402
from kiosk.app import build_service, ensure_enrolled  # noqa: E402
from kiosk.config import load_config  # noqa: E402
from hub import demo  # noqa: E402
from hub.app import HubSettings  # noqa: E402
from hub.server import EmbeddedHub  # noqa: E402
from hub.store import HubStore  # noqa: E402

GTINS = [p["gtin"] for p in demo.products()]


def kiosk(root: Path, name: str, hub_url: str, batch_size: int):
    config = load_config(root / "none.toml", environ={}, overrides={"data_dir": root / name, "batch_size": batch_size,
                                                                     "sync_timeout_s": 30})
    ensure_enrolled(config, hub_url, "DEMO")
    return build_service(config, with_reader=False)


def fill(service, n: int) -> int:
    """`n` wishlist adds of 20 shoppers, each pointing at its visit's check-in (the proof the hub
    asks of every event): the 20 check-ins are queued first, with their cards' credentials, as an
    offline kiosk queues them. Returns how many events were queued in all."""
    refs = []
    for k in range(20):
        visit = service.outbox.append(api.CHECKIN, {"credential": {"kind": "token", "token": demo.token_for(k)},
                                                    "shopper_id": f"shopper-{k:02d}"})
        refs.append({"checkin": visit["event_id"], "shopper_id": f"shopper-{k:02d}"})
    for i in range(n):
        service.outbox.append(api.WISHLIST_ADD, {**refs[i % 20], "gtin": GTINS[i % len(GTINS)]})
    return n + 20


def drain_rate(root: Path, hub_url: str, n: int, batch_size: int, name: str) -> float:
    service = kiosk(root, name, hub_url, batch_size)
    queued = fill(service, n)
    t = time.perf_counter()
    sent = service.sync.drain(honour_backoff=False)
    elapsed = time.perf_counter() - t
    assert sent["created"] == queued, sent
    service.stop()
    return queued / elapsed


def fifty_kiosks(root: Path, hub_url: str, per_kiosk: int) -> float:
    services = [kiosk(root, f"fleet-{i}", hub_url, 200) for i in range(50)]
    queued = sum(fill(s, per_kiosk) for s in services)
    barrier = threading.Barrier(51)
    threads = [threading.Thread(target=lambda s=s: (barrier.wait(), s.sync.drain(honour_backoff=False)))
               for s in services]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    left = sum(s.outbox.depth() for s in services)
    for s in services:
        s.stop()
    assert left == 0, left
    return queued / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fleet-events", type=int, default=400, help="events per kiosk in the 50-kiosk run")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    seed = HubStore(root / "seed.db")
    demo.seed(seed)
    seed.close()
    batched, single, fleet = [], [], []
    for run in range(args.runs):
        shutil.copy(root / "seed.db", root / f"hub{run}.db")
        # throughput, not the hub's flood limits: 100+ enrollments and 10,000 one-event requests
        # a run would trip them (bench/bench_hub.py measures the limits themselves)
        with EmbeddedHub(HubSettings(db_path=root / f"hub{run}.db", device_rate=0, enroll_per_client=1000,
                                     enroll_hub_wide=1000)) as hub:
            batched.append(drain_rate(root, hub.url, args.events, 200, f"b{run}"))
            single.append(drain_rate(root, hub.url, args.events, 1, f"s{run}"))
            fleet.append(fifty_kiosks(root / f"f{run}", hub.url, args.fleet_events))
    b, s, f = statistics.median(batched), statistics.median(single), statistics.median(fleet)
    print(f"drain {args.events} events, batches of 200: {b:,.0f} events/s (median of {args.runs}: "
          f"{', '.join(f'{x:,.0f}' for x in batched)})")
    print(f"drain {args.events} events, one request each: {s:,.0f} events/s (median of {args.runs})")
    print(f"batched / one-per-request: {b / s:.1f}x   (target >= 20x; target >= 5,000 events/s batched)")
    print(f"hub ingest, 50 kiosks at once, {args.fleet_events} events each: {f:,.0f} events/s (median of {args.runs})")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
