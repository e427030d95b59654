"""Channel API bench (issue 12): a web shop reading a shopper's wishlist through
`GET /v1/channel/wishlist` (token checked, grant and ledger checked, the brand's view built,
stock per store, an access-log row at most once a minute), the same read answered 304 with
If-None-Match, and an add (`POST /v1/channel/wishlist/items`, idempotent receipt), beside the
baseline measured in the same run: a kiosk's check-in of the same shopper (`POST /v1/checkins`),
the hub's hottest call. The real hub on a loopback port over a fresh copy of the demo world on
SQLite (one process, uvicorn, real HTTP through one keep-alive connection), sequential calls.

    .venv/bin/python bench/bench_channel.py [--calls 300] [--warmup 30]

Prints median and p95 in milliseconds per kind of call.
"""
from __future__ import annotations

import argparse
import hashlib
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def grant_token(store, shopper_id: str, brand: str, scopes: str) -> str:
    """A grant and an access token as the token endpoint stores them (the code flow is the
    browser tests' business; this measures the calls a shop makes afterwards)."""
    from hub import oauth
    client_id = oauth.register_client(store, brand, "bench shop", ["https://shop.example/cb"], "web")["client_id"]
    now, value, grant = time.time(), "at_" + secrets.token_urlsafe(32), "gr_" + secrets.token_urlsafe(12)
    with store.transaction() as conn:
        conn.execute("INSERT INTO oauth_grants(id, shopper_id, brand_id, client_id, scope, created_at, updated_at) "
                     "VALUES (?,?,?,?,?,?,?)", (grant, shopper_id, brand, client_id, scopes, now, now))
        conn.execute("INSERT INTO oauth_tokens(id, grant_id, client_id, shopper_id, brand_id, scope, access_hash, "
                     "refresh_hash, issued_at, access_expires_at, refresh_expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                     ("tk_" + secrets.token_urlsafe(8), grant, client_id, shopper_id, brand, scopes,
                      hashlib.sha256(value.encode()).hexdigest(), hashlib.sha256(secrets.token_bytes(16)).hexdigest(),
                      now, now + 3600, now + 86400))
    return value


def timed(session, calls: int, warmup: int, send) -> list[float]:
    out = []
    for i in range(warmup + calls):
        start = time.perf_counter()
        response = send(session, i)
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code >= 400:
            raise SystemExit(f"bench call failed: {response.status_code} {response.text[:200]}")
        if i >= warmup:
            out.append(elapsed)
    return out


def main() -> int:
    import requests
    from hub import demo
    from hub.app import HubSettings
    from hub.server import EmbeddedHub
    from hub.store import HubStore

    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "hub.db"
        seeding = HubStore(db)
        demo.seed(seeding)
        seeding.close()
        settings = HubSettings(db_path=db, device_rate=0)  # the per-kiosk limit would measure itself
        with EmbeddedHub(settings) as hub:
            token = grant_token(hub.store, "shopper-00", "lotus", "wishlist wishlist.other_brands")
            auth = {"Authorization": f"Bearer {token}"}
            enrolled = requests.post(hub.url + "/v1/devices/enroll", json={"code": "DEMO", "name": "bench"}, timeout=10)
            device = {"Authorization": "Bearer " + enrolled.json()["device_token"]}
            lotus = [p["gtin"] for p in demo.products() if p["brand_id"] == "lotus"]
            with requests.Session() as s:
                first = s.get(hub.url + "/v1/channel/wishlist", headers=auth, timeout=10)
                etag = first.headers["ETag"]
                runs = {
                    "check-in (baseline)": lambda s, i: s.post(hub.url + "/v1/checkins", headers=device, timeout=10, json={
                        "credential": {"kind": "token", "token": demo.token_for(0)}, "checkin_id": str(uuid.uuid4())}),
                    "channel wishlist read": lambda s, i: s.get(hub.url + "/v1/channel/wishlist", headers=auth,
                                                                timeout=10),
                    "channel read, 304": lambda s, i: s.get(hub.url + "/v1/channel/wishlist", timeout=10,
                                                            headers={**auth, "If-None-Match": etag}),
                    "channel add": lambda s, i: s.post(hub.url + "/v1/channel/wishlist/items", headers=auth,
                                                       timeout=10, json={"event_id": str(uuid.uuid4()),
                                                                         "gtin": lotus[i % len(lotus)]}),
                }
                print(f"channel bench: {args.calls} sequential calls each after {args.warmup} warm-up, SQLite, "
                      f"one hub process, shopper with {len(first.json()['items'])} visible items")
                for name, send in runs.items():
                    if name == "channel read, 304":  # the ETag of the list as it stands now
                        etag = s.get(hub.url + "/v1/channel/wishlist", headers=auth, timeout=10).headers["ETag"]
                    values = timed(s, args.calls, args.warmup, send)
                    print(f"  {name:<24} median {statistics.median(values):6.2f} ms   p95 {p95(values):6.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
