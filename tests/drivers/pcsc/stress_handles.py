"""Run by test_threads.py in a child process (a crash must fail one test, not end the run).

    python -m tests.drivers.pcsc.stress_handles "<reader name>" <seconds>

Threads doing what the kiosk's PC/SC backend does at once: card links connecting to the
card and disconnecting from it (each from its own thread, as `drivers.pcsc_link` does), and
monitoring contexts established and released (as the reader thread does when it reconnects,
and as `kiosk doctor` and the technician tools do). Prints the rounds made; exits 0.
"""
from __future__ import annotations

import os
import sys
import threading
import time

from drivers import pcsc_link
from drivers.pcsc_link import Link


def main(reader: str, seconds: float) -> None:
    stop = threading.Event()
    counts = {"links": 0, "contexts": 0}
    failures: list[str] = []

    def links() -> None:
        while not stop.is_set():
            link = Link(reader)
            try:
                link.call(link.connect, reader, timeout=5.0, stop=stop)
                counts["links"] += 1
            except pcsc_link.Stopped:
                pass
            except Exception as exc:  # noqa: BLE001 - reported below
                failures.append(repr(exc))
            link.close()  # disconnect + release, in the link's thread, while others run

    def contexts() -> None:
        while not stop.is_set():
            rc, context = pcsc_link.establish_context()
            if rc:
                failures.append(f"SCardEstablishContext 0x{rc & 0xFFFFFFFF:08X}")
                continue
            pcsc_link.release_context(context)
            counts["contexts"] += 1

    threads = [threading.Thread(target=fn) for fn in [links] * 3 + [contexts] * int(os.environ.get("STRESS_CONTEXT_THREADS", "2"))]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(10)
    time.sleep(0.5)  # the last links' own threads disconnect now
    print(f"links {counts['links']}, contexts {counts['contexts']}, failures {len(failures)}")
    if failures:
        print("\n".join(sorted(set(failures))[:5]))
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
