"""Many PC/SC handles at once in one process, through the real pcsc-lite client and pcscd.

pcsc-lite's client library walks its process-wide list of contexts without its lock inside
SCardDisconnect; a context opened or released in another thread at that moment crashed the
whole test process once (a segfault in SCardDisconnect beside SCardEstablishContext). The
backend serialises those calls (`drivers.pcsc_link._HANDLES`). The race is a few
instructions wide: this test could not make it crash on demand, with or without the lock
(6,500 disconnects beside 200,000 contexts in 40 s). What it does catch is the lock's own
failure modes, which are likelier: a deadlock (its first version also wrapped SCardConnect,
which waits while another handle holds a transaction on the reader, and hung here at once)
and card links starved or failing while contexts churn. It runs in a child process so that
a crash or a hang fails this one test with what happened.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.emulators.vpcd_card import UidOnlyCard

ROOT = Path(__file__).resolve().parents[3]


def test_cards_and_contexts_opened_and_closed_at_once_do_not_crash(pcscd, cards):
    card = cards(UidOnlyCard())
    card.insert()
    pcscd.wait_card(pcscd.READER, present=True)
    proc = subprocess.run([sys.executable, "-m", "tests.drivers.pcsc.stress_handles", pcscd.READER, os.environ.get("STRESS_SECONDS", "6")],
                          cwd=ROOT, env=dict(os.environ, PYTHONFAULTHANDLER="1"),
                          capture_output=True, text=True, timeout=120)
    print(proc.stdout)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stdout[-500:]} {proc.stderr[-1500:]}"
    links, contexts = (int(part.split()[1].rstrip(",")) for part in proc.stdout.split(",")[:2])
    assert links > 50 and contexts > 50  # it really ran them side by side
