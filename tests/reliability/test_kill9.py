"""Kill -9 at random moments while the kiosk taps and syncs: after the last restart and a
sync, the hub holds every event the kiosk ever confirmed, exactly once (by event id)."""
import os
import random
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from kiosk.app import build_service, ensure_enrolled
from tests.reliability.conftest import report

KILLS = 50
UUID = re.compile(r"^C ([0-9a-f-]{36})$")
REPO = Path(__file__).resolve().parents[2]


def test_kill_nine_loses_and_doubles_nothing(hub_process, hub_db, kiosk_config):
    ensure_enrolled(kiosk_config, hub_process.url, "DEMO")
    rng = random.Random(9)
    confirmed: list[str] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    env["PYTHONPATH"] = str(REPO)
    started = time.monotonic()
    for kill in range(KILLS):
        proc = subprocess.Popen([sys.executable, "-m", "tests.reliability.kill_worker", str(kiosk_config.data_dir),
                                 hub_process.url, str(kill)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                env=env, cwd=REPO)
        if kill % 5:  # most kills land among taps and syncs, whatever the start-up takes here
            ready = select.select([proc.stdout], [], [], 30)[0] and proc.stdout.readline()
            assert ready == b"R\n", f"the kiosk worker did not start: {ready!r}"
            time.sleep(rng.uniform(0.05, 0.7))
        else:  # and every fifth one at a random moment of the start-up itself (opening the files)
            time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
        confirmed += [m.group(1) for line in out.decode(errors="replace").splitlines() if (m := UUID.match(line))]
    service = build_service(kiosk_config, with_reader=False)
    try:
        pending_before = service.outbox.depth()
        service.sync_now()
        # the hub's per-device flood limit may answer 429 to a kiosk that tapped this fast: the
        # worker then waits out Retry-After and sends the rest, as it would in a shop
        service.sync.start()
        deadline = time.monotonic() + 60
        while service.outbox.depth() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert service.outbox.depth() == 0 and service.outbox.parked() == [], service.sync.last_error
    finally:
        service.stop()
    conn = sqlite3.connect(hub_db)
    received = [r[0] for r in conn.execute("SELECT event_id FROM events WHERE device_id != ''")]
    adds = [r[0] for r in conn.execute("SELECT tag FROM wishlist_adds")]
    conn.close()
    lost = set(confirmed) - set(received)
    report("kill -9", kills=KILLS, events_confirmed=len(confirmed), delivered=len(set(confirmed) & set(received)),
           lost=len(lost), duplicates=len(received) - len(set(received)), left_for_final_sync=pending_before,
           seconds=round(time.monotonic() - started, 1))
    assert len(confirmed) > 100  # the kills really landed among taps
    assert not lost
    assert len(received) == len(set(received)) and len(adds) == len(set(adds))
