"""Hardware probing for `kiosk doctor`: what stands between this machine and a working NFC
reader, and the fix.

Every check reads the machine through a `SystemProbe`: a root directory standing for `/` (a fake
tree in tests), a command runner, and the calls that are not files (libusb lookup, PC/SC, nfcpy's
device table). It only diagnoses: it never loads modules, starts services or writes files.
`hardware_checks` runs every check and returns `Check` findings; `kiosk.doctor` adds the kiosk's
own checks (its data files, its enrollment) and prints them all.

    checks = hardware_checks("nfcpy:usb", production=True)
"""
from __future__ import annotations

import contextlib
import ctypes.util
import getpass
import logging
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

log = logging.getLogger(__name__)

OK, WARN, FAIL, CRITICAL = "ok", "warn", "fail", "critical"
STATUSES = (OK, WARN, FAIL, CRITICAL)  # in rising severity
PCSCD_NOT_RUNNING = 0x8010001D  # SCARD_E_NO_SERVICE from SCardEstablishContext
NO_READERS_AVAILABLE = 0x8010002E  # SCARD_E_NO_READERS_AVAILABLE: an empty list, not an error
PYSCARD_MISSING = -1  # PcscListing.error when pyscard cannot be imported
PCSCD_SOCKET = "/run/pcscd/pcscd.comm"
KERNEL_NFC_MODULES = ("pn533_usb", "port100", "pn533")  # kernel drivers that grab nfcpy's readers
BLACKLIST_FILE = "/etc/modprobe.d/blacklist-nfc.conf"
UDEV_RULE_FILE = "/etc/udev/rules.d/93-nfc-kiosk.rules"  # after 92-libccid.rules, or it is undone
VPCD_PACKAGE = "vsmartcard-vpcd"
VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
READER_CONF = "/etc/reader.conf.d"  # pcscd's default --config
VPCD_PORT = 35963  # vpcd's default TCP port (CHANNELID 0x8C7B)
BUG_HELP = "report this as a bug, with the output of `kiosk doctor --json`"
READER_HELP = ("plug in a reader nfcpy drives (ACS ACR122U, SCM SCL3711, Sony RC-S380) and set "
               'reader = "nfcpy:usb", or a PC/SC (CCID) reader and set reader = "pcsc"')


@dataclass(frozen=True)
class Check:
    """One finding, and exactly what to do about it (`fix` is empty when all is well).

        Check("libusb", "fail", "libusb-1.0 is not installed", "sudo apt-get install libusb-1.0-0")
    """

    name: str
    status: str
    summary: str
    fix: str = ""


@dataclass(frozen=True)
class PcscListing:
    """What PC/SC answered: reader names, or an SCard error code (`PYSCARD_MISSING`: no pyscard).

        PcscListing(readers=("ACS ACR122U PICC Interface 00 00",)); PcscListing(error=0x8010001D)
    """

    readers: tuple[str, ...] = ()
    error: int | None = None


@dataclass(frozen=True)
class UsbDevice:
    """One USB device as sysfs describes it.

        UsbDevice(0x072F, 0x2200, bus=1, dev=4, product="ACR122U PICC Interface").node
    """

    vid: int
    pid: int
    bus: int
    dev: int
    product: str = ""
    drivers: tuple[str, ...] = ()  # kernel drivers bound to its interfaces
    ccid: bool = False  # has a smart-card (CCID, class 0x0b) interface: pcscd will claim it

    @property
    def node(self) -> str:
        return f"/dev/bus/usb/{self.bus:03d}/{self.dev:03d}"

    @property
    def label(self) -> str:
        ids, where = f"{self.vid:04x}:{self.pid:04x}", f"usb:{self.bus:03d}:{self.dev:03d}"
        return f"{self.product or 'USB device'} ({ids}) at {where}"

    def matches(self, spec: str) -> bool:
        """Does `nfcpy:usb`, `nfcpy:usb:<vid>[:<pid>]` or `nfcpy:usb:<bus>:<dev>` name this device?"""
        names = (f"{self.vid:04x}", f"{self.vid:04x}:{self.pid:04x}", f"{self.bus:03d}:{self.dev:03d}")
        return spec.lower() == "nfcpy:usb" or spec.lower().removeprefix("nfcpy:usb:") in names


def run_command(argv: Sequence[str]) -> tuple[int, str] | None:
    """Run `argv` for at most 5 s: (exit status, stdout), or None if it is absent or hangs."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=5, check=False)
        return done.returncode, done.stdout
    return None


def list_pcsc_readers() -> PcscListing:
    """Ask pcscd for its readers through pyscard (imported here, never at module import)."""
    try:
        from smartcard import scard
    except ImportError:
        return PcscListing(error=PYSCARD_MISSING)
    from drivers import pcsc_link  # its lock: a reader may be running in this process
    readers: list[str] = []
    hresult, context = pcsc_link.establish_context()
    if hresult == scard.SCARD_S_SUCCESS:
        hresult, readers = scard.SCardListReaders(context, [])
        pcsc_link.release_context(context)
    code = hresult & 0xFFFFFFFF
    answered = code in (0, NO_READERS_AVAILABLE)
    return PcscListing(readers=tuple(readers or ()) if answered else (), error=None if answered else code)


def nfcpy_usb_map() -> dict[tuple[int, int], str]:
    """nfcpy's own table of supported USB readers: (vid, pid) -> its driver module."""
    from nfc.clf.device import usb_device_map  # nfcpy loads libusb when imported
    return dict(usb_device_map)


@dataclass(frozen=True)
class SystemProbe:
    """The machine as doctor sees it; every part can be replaced by a fake.

        probe = SystemProbe(root=tmp_path, list_pcsc=lambda: PcscListing(error=0x8010001D))
        checks = hardware_checks("nfcpy:usb", probe=probe)
    """

    root: Path = Path("/")
    run: Callable[[Sequence[str]], tuple[int, str] | None] = run_command
    find_library: Callable[[str], str | None] = ctypes.util.find_library
    list_pcsc: Callable[[], PcscListing] = list_pcsc_readers
    nfcpy_map: Callable[[], dict[tuple[int, int], str]] = nfcpy_usb_map
    uid: int = field(default_factory=os.geteuid)
    gids: tuple[int, ...] = field(default_factory=lambda: tuple({os.getegid(), *os.getgroups()}))
    user: str = field(default_factory=getpass.getuser)

    def path(self, path: str) -> Path:
        return Path(self.root, path.lstrip("/"))

    def read(self, path: str) -> str:
        with contextlib.suppress(OSError):
            return self.path(path).read_text(errors="replace")
        return ""

    def listdir(self, path: str) -> list[str]:
        with contextlib.suppress(OSError):
            return sorted(os.listdir(self.path(path)))
        return []

    def can_read_write(self, path: str) -> bool:
        """Could this probe's user open `path` read-write? (mode bits; ACLs too on the real /)."""
        if self.uid == 0:
            return True
        if Path(self.root) == Path("/") and self.uid == os.geteuid():
            return os.access(path, os.R_OK | os.W_OK)  # counts uaccess ACLs as well
        with contextlib.suppress(OSError):
            st = self.path(path).stat()
            want = 0o600 if st.st_uid == self.uid else 0o060 if st.st_gid in self.gids else 0o006
            return st.st_mode & want == want
        return False  # no device node at all

    def usb_devices(self) -> list[UsbDevice]:
        """Every USB device in sysfs, with the kernel drivers bound to its interfaces."""
        base = "sys/bus/usb/devices"
        devices, names = [], self.listdir(base)
        for name in (n for n in names if ":" not in n and not n.startswith("usb")):  # no root hubs
            attr = {a: self.read(f"{base}/{name}/{a}").strip()
                    for a in ("idVendor", "idProduct", "busnum", "devnum", "product")}
            try:
                ids = int(attr["idVendor"], 16), int(attr["idProduct"], 16)
                where = int(attr["busnum"]), int(attr["devnum"])
            except ValueError:  # unplugged while we read it
                continue
            ifaces = [f"{base}/{i}" for i in names if i.startswith(name + ":")]  # "1-1:1.0"
            links = [self.path(f"{i}/driver") for i in ifaces]
            drivers = tuple(os.path.basename(os.readlink(link)) for link in links if link.is_symlink())
            ccid = any(self.read(f"{i}/bInterfaceClass").strip() == "0b" for i in ifaces)
            devices.append(UsbDevice(*ids, *where, attr["product"], drivers, ccid))
        return devices

    def pcscd_pids(self) -> list[int]:
        return [int(p) for p in self.listdir("proc")
                if p.isdigit() and self.read(f"proc/{p}/comm").strip() == "pcscd"]

    def vpcd_readers(self, pids: list[int]) -> list[tuple[str, str, int]]:
        """(conf file, reader name, TCP port) of vpcd readers in any reader.conf pcscd may use."""
        confs = [READER_CONF]
        for pid in pids:  # pcscd -c DIR | --config DIR | --config=DIR
            confs += re.findall(r"(?:^|\0)(?:-c|--config)[\0=]([^\0]+)", self.read(f"proc/{pid}/cmdline"))
        files, found = [], []
        for conf in dict.fromkeys(confs):
            files += [f"{conf}/{f}" for f in self.listdir(conf)] if self.path(conf).is_dir() else [conf]
        for file in files:
            for block in re.split(r"(?m)^\s*(?=FRIENDLYNAME\s)", self.read(file)):
                entry = dict(re.findall(r'(?m)^\s*([A-Z]+)\s+"?([^"\n]*?)"?\s*$', block))
                if "libifdvpcd" in entry.get("LIBPATH", ""):
                    channel = entry.get("CHANNELID") or entry.get("DEVICENAME", "").rpartition(":")[2]
                    port = int(channel, 0) if re.fullmatch(r"0x[0-9a-fA-F]+|\d+", channel) else VPCD_PORT
                    found.append((file, entry.get("FRIENDLYNAME", "Virtual PCD"), port))
        return found


class _Run:
    """One doctor run: the facts the checks share, gathered once, and one method per check."""

    CHECKS = ("reader", "libusb", "pcscd", "kernel_driver", "usb_permission", "reader_conflict", "virtual_reader")

    def __init__(self, probe: SystemProbe, spec: str | None, production: bool) -> None:
        self.probe, self.spec, self.production = probe, spec, production
        try:
            supported, self.nfcpy_error = probe.nfcpy_map(), ""
        except Exception as exc:  # ImportError, or libusb failing to load inside nfcpy
            supported, self.nfcpy_error = {}, f"{type(exc).__name__}: {exc}"
        self.pcsc, self.pids = probe.list_pcsc(), probe.pcscd_pids()
        self.vpcd, self.devices = probe.vpcd_readers(self.pids), probe.usb_devices()
        self.nfc = [d for d in self.devices if (d.vid, d.pid) in supported]
        virtual = ("Virtual PCD",) + tuple(name for _, name, _ in self.vpcd)
        self.physical = [r for r in self.pcsc.readers if not production or not r.startswith(virtual)]
        self.pcscd_up = self.pcsc.error is None or bool(self.pids) or probe.path(PCSCD_SOCKET).exists()

    def uses(self, prefix: str) -> bool:
        return bool(self.spec and self.spec.lower().startswith(prefix))

    def reader(self) -> Check:
        spec, kind = self.spec, (self.spec or "").lower().split(":")
        found = [d.label for d in self.nfc] + [f"PC/SC {r!r}" for r in self.physical]
        if kind[0] == "simulated" or kind[:2] == ["nfcpy", "udp"]:
            if not self.production:
                return Check("reader", OK, f"reader {spec!r} (development)")
            return Check("reader", FAIL, f"reader {spec!r} is a test reader: shoppers' taps are never read"
                         f"{' (found: ' + '; '.join(found) + ')' if found else ''}", READER_HELP)
        if spec is None:
            match = found
        elif kind[:2] == ["nfcpy", "usb"]:
            match = [d.label for d in self.nfc if d.matches(spec)]
        elif kind[0] == "pcsc":
            match = [f"PC/SC {r!r}" for r in self.physical if spec.partition(":")[2].casefold() in r.casefold()]
        else:  # serial readers (nfcpy:tty:...) answer only when opened
            return Check("reader", WARN, f"doctor cannot see reader {spec!r} without opening it",
                         "test it on the technician screen's reader test (tap a card)")
        if match:
            return Check("reader", OK, f"reader {spec or 'found'}: {'; '.join(match)}")
        hint = f" (nfcpy cannot be loaded: {self.nfcpy_error})" if self.nfcpy_error else (
            "" if self.probe.path("sys/bus/usb").is_dir() else " (no USB bus: /sys/bus/usb is absent)")
        if found:
            hint = f" (found instead: {'; '.join(found)}; set reader to match it)"
        what = (f"no reader matches {spec!r}" if spec else
                "no reader: nfcpy sees no supported USB reader and pcscd lists no physical reader")
        return Check("reader", FAIL, what + hint, READER_HELP)

    def libusb(self) -> Check:
        lib = self.probe.find_library("usb-1.0")
        if lib:
            return Check("libusb", OK, f"libusb-1.0 found ({lib})")
        return Check("libusb", FAIL if not self.spec or self.uses("nfcpy:usb") else WARN,
                     "libusb-1.0 is not installed: nfcpy cannot use USB readers",
                     "sudo apt-get install libusb-1.0-0")

    def pcscd(self) -> Check:
        status, error = FAIL if self.uses("pcsc") else WARN, self.pcsc.error
        if error == PYSCARD_MISSING:
            return Check("pcscd", status, "pyscard is not installed: PC/SC readers cannot be used",
                         "sudo apt-get install swig libpcsclite-dev && pip install pyscard")
        if error is None:
            return Check("pcscd", OK, f"pcscd is running and lists {', '.join(self.pcsc.readers) or 'no reader'}")
        socket = "" if self.probe.path(PCSCD_SOCKET).exists() else f", no socket at {PCSCD_SOCKET}"
        why = (f"pcscd is not running (SCardEstablishContext 0x{error:08X}{socket})"
               if error == PCSCD_NOT_RUNNING else f"PC/SC failed with 0x{error:08X}")
        if self.uses("nfcpy"):
            return Check("pcscd", OK, f"{why}; not needed for reader {self.spec!r}")
        return Check("pcscd", status, why,
                     "sudo apt-get install pcscd && sudo systemctl enable --now pcscd.socket")

    def kernel_driver(self) -> Check:
        loaded = [p[0] for p in map(str.split, self.probe.read("proc/modules").splitlines())
                  if p and p[0] in KERNEL_NFC_MODULES]
        held = [(d, drv) for d in self.devices for drv in d.drivers if drv in KERNEL_NFC_MODULES]
        if not loaded and not held:
            return Check("kernel-driver", OK, "no kernel NFC driver (pn533_usb, port100) is loaded")
        # name only the top modules: modprobe -r takes their unused dependencies (pn533, nfc) along
        top = [drv for _, drv in held] + [m for m in loaded if m != "pn533" or "pn533_usb" not in loaded]
        top = list(dict.fromkeys(top))
        lines = "".join(f"blacklist {m}\\n" for m in top)
        fix = f"sudo modprobe -r {' '.join(top)} && printf '{lines}' | sudo tee -a {BLACKLIST_FILE}"
        if held:
            what = "; ".join(f"the kernel's {drv} driver holds {d.label}" for d, drv in held)
            return Check("kernel-driver", FAIL, f"{what}: neither nfcpy nor pcscd can open it", fix)
        return Check("kernel-driver", WARN, f"kernel NFC driver(s) loaded ({', '.join(loaded)}): they "
                     "will claim a supported reader as soon as it is plugged in", fix)

    def usb_permission(self) -> Check:
        probe, name = self.probe, "usb-permission"
        if self.spec and not self.uses("nfcpy:usb"):
            return Check(name, OK, f"not needed for reader {self.spec!r}")
        denied = [d for d in self.nfc if not probe.can_read_write(d.node)]
        if not denied:
            return Check(name, OK, f"user {probe.user!r} may open every supported reader")
        rules = "".join(f'SUBSYSTEM=="usb", ATTRS{{idVendor}}=="{d.vid:04x}", ATTRS{{idProduct}}=='
                        f'"{d.pid:04x}", MODE="0660", GROUP="plugdev"\\n' for d in denied)
        denial = "; ".join(f"user {probe.user!r} cannot open {d.node} ({d.label})" for d in denied)
        return Check(name, FAIL, denial, f"printf '{rules}' | sudo tee {UDEV_RULE_FILE} && sudo udevadm "
                     f"control --reload-rules && sudo udevadm trigger --subsystem-match=usb && sudo adduser "
                     f"{probe.user} plugdev, then log in again (the rule file must sort after 92-libccid.rules)")

    def reader_conflict(self) -> Check:
        name = "reader-conflict"
        if not self.uses("nfcpy:usb"):
            return Check(name, OK, "no nfcpy USB reader configured: nothing to share")
        if not self.pcscd_up:
            return Check(name, OK, "pcscd is not running: it cannot take the nfcpy reader")
        fix = ("one stack per reader: sudo systemctl disable --now pcscd.socket pcscd.service, or "
               'switch the kiosk to PC/SC: reader = "pcsc"')
        fds = [self.probe.path(f"proc/{p}/fd/{fd}")
               for p in self.pids for fd in self.probe.listdir(f"proc/{p}/fd")]
        open_by_pcscd = {os.readlink(fd) for fd in fds if fd.is_symlink()}
        for d in (d for d in self.nfc if d.matches(self.spec)):
            named = [r for r in self.pcsc.readers if d.product and d.product.casefold() in r.casefold()]
            if d.node in open_by_pcscd or named:
                return Check(name, FAIL, f"pcscd holds {d.label}{' as ' + repr(named[0]) if named else ''}"
                             ", which nfcpy is set to use", fix)
            if d.ccid:
                return Check(name, WARN, f"{d.label} is also a CCID reader: pcscd will claim it as "
                             "soon as any PC/SC client connects", fix)
        return Check(name, OK, "pcscd does not hold the nfcpy reader")

    def virtual_reader(self) -> Check:
        evidence, steps = [], []
        dpkg = self.probe.run(["dpkg-query", "-W", "-f=${Status}", VPCD_PACKAGE])
        if dpkg and dpkg[0] == 0 and dpkg[1].strip().endswith(" installed"):
            evidence.append(f"package {VPCD_PACKAGE} is installed")
            steps.append(f"sudo apt-get purge {VPCD_PACKAGE}")
        if self.probe.path(VPCD_DRIVER).exists():
            evidence.append(f"{VPCD_DRIVER} exists")
            steps += [] if steps else [f"sudo rm -f {VPCD_DRIVER}"]  # not from the package
        for file, reader, port in self.vpcd:
            evidence.append(f"{file} gives pcscd a virtual reader {reader!r} that takes cards "
                            f"from any host on TCP port {port}")
            steps.append(f"sudo rm -f {file}")
        if self.vpcd and self.pids:
            pids = " ".join(map(str, self.pids))
            evidence.append(f"pcscd is running (pid {pids})")
            steps.append(f"sudo systemctl restart pcscd (a pcscd started by hand: sudo kill {pids})")
        if not evidence:
            return Check("virtual-reader", OK, f"no virtual reader driver ({VPCD_PACKAGE}) is installed")
        summary = f"the virtual smart-card reader driver {VPCD_PACKAGE} is present: " + "; ".join(evidence)
        fix = " && ".join(dict.fromkeys(steps))
        if self.production:
            return Check("virtual-reader", CRITICAL, summary, fix)
        return Check("virtual-reader", WARN, summary + " (acceptable on a development machine only)",
                     f"never ship it on a kiosk; to remove it: {fix}")


def hardware_checks(reader_spec: str | None = None, production: bool = True,
                    probe: SystemProbe | None = None) -> list[Check]:
    """Every reader, driver and permission check against `probe` (the real machine by default),
    in `_Run.CHECKS` order; never raises: a check or probe that breaks becomes a finding."""
    checks: list[Check] = []
    try:
        run = _Run(probe or SystemProbe(), reader_spec, production)
        for name in run.CHECKS:
            try:
                checks.append(getattr(run, name)())
            except Exception as exc:  # one broken check must not hide the other findings
                log.exception("doctor check %s failed", name)
                checks.append(Check(name.replace("_", "-"), FAIL, f"the check failed: {exc!r}", BUG_HELP))
    except Exception as exc:  # a probe broke while gathering: still say something useful
        log.exception("doctor could not inspect the machine")
        checks.append(Check("doctor", FAIL, f"the machine could not be inspected: {exc!r}", BUG_HELP))
    return checks
