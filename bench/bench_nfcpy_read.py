"""Tap-to-TagRead latency of the nfcpy driver beside a bare nfcpy read, over the udp transport.

    python bench/bench_nfcpy_read.py [--reads 150]

For each tag kind the emulated field (tests/emulators/nfc_udp.py) places the tag while
the reader polls, and the clock runs from that moment to the moment the reader hands
over the result: the driver's `on_read` callback with a full `TagRead`, or, for the bare
read, the end of an nfcpy `on-connect` that reads the same thing (`tag.ndef.octets`, or
the phone exchange of `drivers.hce`). Both poll only the tag's technology, once per
round, and wait for the tag to leave before the next tap, so the difference is what the
driver adds. Figures are wall-clock on this machine, loopback UDP, single process.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ndef  # noqa: E402
import nfc  # noqa: E402

import drivers  # noqa: E402
from drivers import hce  # noqa: E402
from drivers.hce_phone import Phone  # noqa: E402
from tests.emulators.nfc_udp import Felica, Ntag213, UdpField, phone, type4_tag  # noqa: E402

WARMUP = 3
CARD = b"".join(ndef.message_encoder([ndef.UriRecord("https://id.example/s/4f1c9a0b7e2d")]))
LONG = b"".join(ndef.message_encoder([ndef.UriRecord("https://id.example/s/" + "k" * 610)]))
HANDSET = Phone.generate("bench-credential")
KINDS = {  # name -> (bitrate, new tag, what a correct read holds)
    "NTAG213 (Type 2)": ("106A", lambda: Ntag213(CARD), CARD),
    "FeliCa (Type 3)": ("212F", lambda: Felica(CARD), CARD),
    "Type 4A, 632 B NDEF": ("106A", lambda: type4_tag(LONG), LONG),
    "phone (HCE)": ("106A", lambda: phone(HANDSET), "hce"),
}


def _taps(field: UdpField, make, reads: int, done: threading.Event, results: list) -> list[float]:
    """Place a tag, wait for the reader's result, remove it, wait for polling; ms each."""
    latencies = []
    for i in range(reads + WARMUP):
        done.clear()
        entered = field.place(make())
        if not done.wait(5):
            raise RuntimeError(f"no read on tap {i}")
        if i >= WARMUP:
            latencies.append((results[-1][0] - entered) * 1000)
        field.remove()
        if not field.wait_polling(5):
            raise RuntimeError("the reader did not notice the tag leaving")
    return latencies


def bench_driver(field: UdpField, brty: str, make, expect, reads: int) -> tuple[list[float], list[float]]:
    done, results = threading.Event(), []

    def on_read(read):
        results.append((time.perf_counter(), read))
        done.set()

    reader = drivers.open_reader(field.spec, targets=[brty], kiosk_id="bench-kiosk",
                                 poll_interval=0.0, repeat_guard_s=0.0)
    reader.start(on_read)
    try:
        latencies = _taps(field, make, reads, done, results)
    finally:
        reader.stop()
    for _, read in results:
        content = "hce" if read.hce else read.ndef
        if read.problem or content != expect:
            raise RuntimeError(f"bad read: {read.problem} {read.detail}")
    return latencies, [read.read_ms for _, read in results[WARMUP:]]


def bench_bare(field: UdpField, brty: str, make, expect, reads: int) -> list[float]:
    done, results, stop = threading.Event(), [], threading.Event()

    def on_connect(tag):
        if expect == "hce":
            content = hce.exchange(lambda apdu: bytes(tag.transceive(apdu)), "bench-kiosk") and "hce"
        else:
            content = tag.ndef.octets if tag.ndef else None
        results.append((time.perf_counter(), content))
        done.set()
        return True  # wait for the tag to leave, as the driver does

    def loop():
        clf = nfc.ContactlessFrontend(field.spec.split(":", 1)[1])
        try:
            while not stop.is_set():
                clf.connect(rdwr={"targets": [brty], "iterations": 1, "beep-on-connect": False,
                                  "on-connect": on_connect}, terminate=stop.is_set)
        finally:
            clf.close()

    thread = threading.Thread(target=loop, name="bare-nfcpy")
    thread.start()
    try:
        latencies = _taps(field, make, reads, done, results)
    finally:
        stop.set()
        thread.join(5)
    if any(content != expect for _, content in results):
        raise RuntimeError("bare nfcpy read something else")
    return latencies


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=150, help="timed taps per kind and stack (default 150: fewer let sub-2 ms reads spread by 25%% run to run)")
    args = parser.parse_args()
    print(f"nfcpy {nfc.__version__}, udp transport, {args.reads} timed taps each (+{WARMUP} warm-up)")
    print(f"{'tag':22} {'driver median':>13} {'p95':>7} {'bare median':>12} {'p95':>7} {'ratio':>6}"
          f" {'driver read_ms':>15}")
    with UdpField() as field:
        for name, (brty, make, expect) in KINDS.items():
            bare = bench_bare(field, brty, make, expect, args.reads)
            driver, read_ms = bench_driver(field, brty, make, expect, args.reads)
            ratio = statistics.median(driver) / statistics.median(bare)
            print(f"{name:22} {statistics.median(driver):10.2f} ms {p95(driver):7.2f} "
                  f"{statistics.median(bare):9.2f} ms {p95(bare):7.2f} {ratio:6.2f} "
                  f"{statistics.median(read_ms):12.2f} ms")


if __name__ == "__main__":
    main()
