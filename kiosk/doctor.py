"""`kiosk doctor`: what stands between this machine and a working kiosk, and the fix.

The reader, driver and permission checks are `drivers.probe`'s (hardware probing belongs to the
drivers); this module adds the kiosk's own files (their modes, a device token the hub refused),
runs everything and formats the findings. It only diagnoses: it never loads modules, starts
services or writes files. The CLI calls `run_checks` and prints `format_human` or `to_json`,
exiting with `exit_code`.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from drivers.probe import BUG_HELP, CRITICAL, FAIL, OK, STATUSES, WARN, Check, SystemProbe, hardware_checks

__all__ = ["CRITICAL", "FAIL", "OK", "STATUSES", "WARN", "Check", "SystemProbe", "data_files_check",
           "device_token_check", "exit_code", "format_human", "run_checks", "to_json"]

log = logging.getLogger(__name__)


def data_files_check(data_dir: Path) -> Check:
    """The kiosk's data directory 0700 and its identity, outbox, cache and settings 0600: they
    hold the device token, queued credentials and shoppers' cached views."""
    from kiosk.files import mode_problems, private_paths

    name = "data-files"
    if not Path(data_dir).exists():
        return Check(name, OK, f"no kiosk data in {data_dir} yet")
    problems = mode_problems(Path(data_dir))
    if not problems:
        return Check(name, OK, f"{len(private_paths(Path(data_dir)))} kiosk data file(s) in {data_dir} are private "
                     "to their user (0700/0600)")
    what = "; ".join(f"{p} is {mode:04o} (others may read it; wanted {want:04o})" for p, mode, want in problems)
    fix = " && ".join(f"chmod {want:o} {p}" for p, _, want in problems)
    return Check(name, FAIL, what, fix + " (and UMask=0077 in the kiosk's systemd unit, "
                 "packaging/nfc-kiosk.service)")


def device_token_check(data_dir: Path) -> Check:
    """Whether the hub refused this kiosk's device token (remembered in the outbox's meta)."""
    import sqlite3

    name = "device-token"
    outbox, device = Path(data_dir) / "outbox.db", Path(data_dir) / "device.json"
    if not device.exists():
        return Check(name, WARN, "this kiosk is not enrolled", "kiosk enroll --hub URL --code CODE "
                     "(or the technician screen's provisioning)")
    if not outbox.exists():
        return Check(name, OK, "the hub has not refused this kiosk's device token")
    try:
        conn = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=2.0)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='device_refused'").fetchone()
        finally:
            conn.close()
        device_id = json.loads(device.read_text(encoding="utf-8"))["enrollment"]["device_id"]
        state = json.loads(row[0]) if row and row[0] else {}
    except (sqlite3.Error, OSError, ValueError, KeyError, TypeError) as exc:
        return Check(name, WARN, f"could not read the kiosk's state ({type(exc).__name__})",
                     "run `kiosk status` on the kiosk")
    if isinstance(state, dict) and state.get("device_id") == device_id and state.get("revoked"):
        return Check(name, FAIL, "this kiosk was removed from the fleet: enroll it again (it sends nothing until "
                     "then; its queued events are kept)", "enroll it again with a new code from the brand "
                     "(technician screen, or `kiosk enroll --hub URL --code CODE`): the queued events then go out")
    if isinstance(state, dict) and state.get("device_id") == device_id:
        return Check(name, FAIL, f"the hub refused this kiosk's device token ({state.get('detail', '')}): "
                     "no shopper profile is shown", "re-enroll the kiosk with a new code (technician screen, or "
                     "`kiosk enroll --hub URL --code CODE` once its outbox is sent or exported)")
    return Check(name, OK, "the hub has not refused this kiosk's device token")


def run_checks(config_reader_spec: str | None = None, production: bool = True,
               probe: SystemProbe | None = None, data_dir: Path | None = None) -> list[Check]:
    """Run every check against `probe` (the real machine by default); never raises. With
    `data_dir`, the kiosk's own files are checked too (modes, a refused device token)."""
    checks: list[Check] = []
    for check in (data_files_check, device_token_check) if data_dir is not None else ():
        try:
            checks.append(check(data_dir))
        except Exception as exc:
            log.exception("doctor check %s failed", check.__name__)
            checks.append(Check(check.__name__.removesuffix("_check").replace("_", "-"), FAIL,
                                f"the check failed: {exc!r}", BUG_HELP))
    return checks + hardware_checks(config_reader_spec, production, probe)


def exit_code(checks: Sequence[Check]) -> int:
    """0 when nothing is worse than a warning, 1 for a failure, 2 for a critical finding."""
    return max([STATUSES.index(c.status) - 1 for c in checks] + [0])


def format_human(checks: Sequence[Check]) -> str:
    """Worst first, one line per check, each problem followed by its fix."""
    counts = [(s, sum(c.status == s for c in checks)) for s in reversed(STATUSES[1:])]
    lines = ["kiosk doctor: " + (", ".join(f"{n} {s}" for s, n in counts if n) or "all good")]
    for c in sorted(checks, key=lambda c: -STATUSES.index(c.status)):
        lines.append(f"[{c.status.upper():8}] {c.name}: {c.summary}")
        if c.fix:
            lines.append(f"{'':11}fix: {c.fix}")
    return "\n".join(lines)


def to_json(checks: Sequence[Check]) -> str:
    """{"status", "exit_code", "checks": [{name, status, summary, fix}]} as JSON text."""
    worst = STATUSES[max((STATUSES.index(c.status) for c in checks), default=0)]
    return json.dumps({"status": worst, "exit_code": exit_code(checks),
                       "checks": [asdict(c) for c in checks]}, indent=2, ensure_ascii=False)
