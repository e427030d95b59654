"""`kiosk doctor` against fake machines (a directory tree standing for /) and the real one.

The fake trees hold what the kernel and pcscd would show: sysfs USB devices with their bound
drivers, /proc/modules, /dev/bus/usb nodes with real modes, pcscd processes with their command
lines and open files, reader.conf files. nfcpy's own supported-device table is used as is.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from drivers.probe import PCSCD_NOT_RUNNING, PYSCARD_MISSING, UDEV_RULE_FILE, VPCD_DRIVER, PcscListing
from kiosk.doctor import CRITICAL, FAIL, OK, WARN, Check, SystemProbe, exit_code, format_human, run_checks, to_json

ACR122U = dict(vid=0x072F, pid=0x2200, product="ACR122U PICC Interface")
RCS380 = dict(vid=0x054C, pid=0x06C3, product="RC-S380/P")
PN533_MODULES = ("pn533_usb 20480 0 - Live 0x0000000000000000\n"
                 "pn533 45056 1 pn533_usb, Live 0x0000000000000000\n"
                 "nfc 135168 1 pn533, Live 0x0000000000000000\n")


class FakeMachine:
    """A directory tree standing for /, plus what PC/SC, dpkg and the linker would answer."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pcsc = PcscListing(error=PCSCD_NOT_RUNNING)
        self.installed: set[str] = set()
        self.libusb: str | None = "libusb-1.0.so.0"
        self.calls: list[list[str]] = []
        self.write("proc/modules", "")
        (root / "sys/bus/usb/devices").mkdir(parents=True)

    def write(self, path: str, text: str) -> Path:
        target = self.root / path.lstrip("/")  # never the real file of an absolute path
        assert target.resolve().is_relative_to(self.root.resolve()), target
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    def usb(self, vid: int, pid: int, product: str = "", *, bus: int = 1, dev: int = 4,
            driver: str | None = None, ccid: bool = False, mode: int = 0o666, gid: int = 0) -> str:
        name = f"{bus}-{dev}"
        for attr, value in (("idVendor", f"{vid:04x}"), ("idProduct", f"{pid:04x}"),
                            ("busnum", str(bus)), ("devnum", str(dev)), ("product", product)):
            self.write(f"sys/bus/usb/devices/{name}/{attr}", value + "\n")
        self.write(f"sys/bus/usb/devices/{name}:1.0/bInterfaceClass", "0b\n" if ccid else "ff\n")
        if driver:
            (self.root / f"sys/bus/usb/devices/{name}:1.0/driver").symlink_to(
                f"../../../../bus/usb/drivers/{driver}")
        node = self.write(f"dev/bus/usb/{bus:03d}/{dev:03d}", "")
        node.chmod(mode)
        os.chown(node, 0, gid)
        return f"/dev/bus/usb/{bus:03d}/{dev:03d}"

    def process(self, pid: int, comm: str, argv: list[str], open_files: tuple[str, ...] = ()) -> None:
        self.write(f"proc/{pid}/comm", comm + "\n")
        self.write(f"proc/{pid}/cmdline", "\0".join(argv) + "\0")
        (self.root / f"proc/{pid}/fd").mkdir()
        for fd, target in enumerate(open_files, start=3):
            (self.root / f"proc/{pid}/fd/{fd}").symlink_to(target)

    def vpcd(self, conf: str = "/etc/reader.conf.d/vpcd", name: str = "Virtual PCD",
             channel: str = "0x8C7B") -> None:
        self.write(conf, f'FRIENDLYNAME "{name}"\nDEVICENAME   /dev/null:{channel}\n'
                         f"LIBPATH      {VPCD_DRIVER}\nCHANNELID    {channel}\n")

    def run(self, argv):
        self.calls.append(list(argv))
        if argv[0] != "dpkg-query":
            return None
        return (0, "install ok installed") if argv[-1] in self.installed else (1, "")

    def probe(self, **changes) -> SystemProbe:
        fields = dict(root=self.root, run=self.run, find_library=lambda name: self.libusb,
                      list_pcsc=lambda: self.pcsc, uid=1000, gids=(1000,), user="kiosk")
        return SystemProbe(**(fields | changes))

    def check(self, name: str, spec: str | None = None, production: bool = True, **changes) -> Check:
        return checks_by_name(run_checks(spec, production, self.probe(**changes)))[name]


def checks_by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def shell_output(fix: str) -> str:
    """What the `printf '...'` part of a fix writes, run by a real shell."""
    printf = fix[fix.index("printf"):fix.index(" | sudo tee")]
    return subprocess.run(["sh", "-c", printf], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def machine(tmp_path) -> FakeMachine:
    return FakeMachine(tmp_path)


def test_healthy_nfcpy_kiosk_is_all_ok(machine):
    machine.usb(**ACR122U)
    checks = run_checks("nfcpy:usb", True, machine.probe())
    assert [c.status for c in checks] == [OK] * len(checks), format_human(checks)
    assert {c.name for c in checks} == {"reader", "libusb", "pcscd", "kernel-driver", "usb-permission",
                                         "reader-conflict", "virtual-reader"}
    assert "ACR122U PICC Interface (072f:2200) at usb:001:004" in checks_by_name(checks)["reader"].summary
    assert exit_code(checks) == 0
    assert format_human(checks).startswith("kiosk doctor: all good")


def test_no_reader_at_all_fails(machine):
    reader = machine.check("reader")
    assert reader.status == FAIL
    assert reader.summary.startswith("no reader")
    assert "ACR122U" in reader.fix and 'reader = "pcsc"' in reader.fix
    assert exit_code(run_checks(None, True, machine.probe())) == 1


def test_no_usb_bus_is_said(tmp_path):
    machine = FakeMachine(tmp_path)
    shutil.rmtree(tmp_path / "sys")
    assert "no USB bus" in machine.check("reader").summary


def test_nfcpy_that_cannot_load_is_said(machine):
    def broken():
        raise ImportError("missing usb1 module, try 'pip install libusb1'")
    assert "nfcpy cannot be loaded: ImportError" in machine.check("reader", nfcpy_map=broken).summary


@pytest.mark.parametrize("spec", ["nfcpy:usb", "nfcpy:usb:072f", "nfcpy:usb:072f:2200",
                                  "NFCPY:USB:072F:2200", "nfcpy:usb:001:004"])
def test_configured_usb_reader_is_found(machine, spec):
    machine.usb(**ACR122U)
    assert machine.check("reader", spec).status == OK


def test_configured_reader_missing_but_another_present(machine):
    machine.usb(**ACR122U)
    reader = machine.check("reader", "nfcpy:usb:054c:06c3")
    assert reader.status == FAIL
    assert "no reader matches 'nfcpy:usb:054c:06c3'" in reader.summary
    assert "found instead: ACR122U" in reader.summary


def test_pcsc_reader_by_name(machine):
    machine.pcsc = PcscListing(readers=("ACS ACR122U PICC Interface 00 00",))
    assert machine.check("reader", "pcsc:ACR122U").status == OK
    assert machine.check("reader", "pcsc").status == OK
    assert machine.check("reader", "pcsc:Omnikey").status == FAIL


@pytest.mark.parametrize("spec", ["simulated", "nfcpy:udp:localhost:9000"])
def test_test_readers_fail_in_production_only(machine, spec):
    assert machine.check("reader", spec).status == FAIL
    assert "test reader" in machine.check("reader", spec).summary
    assert machine.check("reader", spec, production=False).status == OK


def test_serial_reader_cannot_be_seen_without_opening(machine):
    reader = machine.check("reader", "nfcpy:tty:AMA0:pn532")
    assert reader.status == WARN and "reader test" in reader.fix


def test_kernel_driver_holding_the_reader(machine):
    machine.usb(**ACR122U, driver="pn533_usb")
    machine.write("proc/modules", PN533_MODULES)
    check = machine.check("kernel-driver", "nfcpy:usb")
    assert check.status == FAIL
    assert "the kernel's pn533_usb driver holds ACR122U PICC Interface (072f:2200)" in check.summary
    assert check.fix == ("sudo modprobe -r pn533_usb && printf 'blacklist pn533_usb\\n' "
                         "| sudo tee -a /etc/modprobe.d/blacklist-nfc.conf")
    assert shell_output(check.fix) == "blacklist pn533_usb\n"


def test_kernel_driver_loaded_without_a_reader_is_a_warning(machine):
    machine.write("proc/modules", "port100 24576 0 - Live 0x0\ndigital 24576 1 port100, Live 0x0\n")
    check = machine.check("kernel-driver")
    assert check.status == WARN
    assert check.fix.startswith("sudo modprobe -r port100 && ")
    assert shell_output(check.fix) == "blacklist port100\n"


def test_kernel_driver_bound_but_not_in_proc_modules(machine):
    machine.usb(**RCS380, driver="port100")
    check = machine.check("kernel-driver", "nfcpy:usb")
    assert check.status == FAIL and "port100" in check.summary
    assert check.fix.startswith("sudo modprobe -r port100 ")


def test_missing_udev_permission(machine):
    node = machine.usb(**ACR122U, mode=0o664)
    check = machine.check("usb-permission", "nfcpy:usb")
    assert check.status == FAIL
    assert f"user 'kiosk' cannot open {node}" in check.summary
    assert UDEV_RULE_FILE in check.fix and "sudo adduser kiosk plugdev" in check.fix
    assert "udevadm control --reload-rules" in check.fix
    assert sorted([Path(UDEV_RULE_FILE).name, "92-libccid.rules"])[-1] == Path(UDEV_RULE_FILE).name
    assert shell_output(check.fix) == ('SUBSYSTEM=="usb", ATTRS{idVendor}=="072f", '
                                       'ATTRS{idProduct}=="2200", MODE="0660", GROUP="plugdev"\n')


def test_udev_permission_through_the_group_is_enough(machine):
    machine.usb(**ACR122U, mode=0o660, gid=46)
    assert machine.check("usb-permission", "nfcpy:usb", gids=(1000, 46)).status == OK
    assert machine.check("usb-permission", "nfcpy:usb", gids=(1000,)).status == FAIL
    assert machine.check("usb-permission", "pcsc").status == OK  # pcscd opens it, not the kiosk


def test_missing_device_node_counts_as_no_permission(machine):
    node = machine.usb(**ACR122U)
    (machine.root / node.lstrip("/")).unlink()
    assert machine.check("usb-permission", "nfcpy:usb").status == FAIL


def test_libusb_missing(machine):
    machine.libusb = None
    check = machine.check("libusb", "nfcpy:usb")
    assert check.status == FAIL and check.fix == "sudo apt-get install libusb-1.0-0"
    assert machine.check("libusb", "pcsc").status == WARN


def test_pcscd_not_running(machine):
    check = machine.check("pcscd", "pcsc")
    assert check.status == FAIL
    assert "pcscd is not running (SCardEstablishContext 0x8010001D, no socket at /run/pcscd/pcscd.comm)" \
        == check.summary
    assert "sudo systemctl enable --now pcscd.socket" in check.fix
    assert machine.check("pcscd").status == WARN
    assert machine.check("pcscd", "nfcpy:usb").status == OK  # nfcpy does not need it
    machine.write("run/pcscd/pcscd.comm", "")
    assert "no socket" not in machine.check("pcscd", "pcsc").summary


def test_pyscard_missing(machine):
    machine.pcsc = PcscListing(error=PYSCARD_MISSING)
    check = machine.check("pcscd", "pcsc")
    assert check.status == FAIL and "pip install pyscard" in check.fix


def test_pcscd_listing_the_nfcpy_reader(machine):
    machine.usb(**ACR122U)
    machine.pcsc = PcscListing(readers=("ACS ACR122U PICC Interface 00 00",))
    check = machine.check("reader-conflict", "nfcpy:usb")
    assert check.status == FAIL
    assert "pcscd holds ACR122U PICC Interface (072f:2200) at usb:001:004" in check.summary
    assert "sudo systemctl disable --now pcscd.socket pcscd.service" in check.fix
    assert 'reader = "pcsc"' in check.fix
    assert machine.check("reader-conflict", "pcsc").status == OK


def test_pcscd_holding_the_nfcpy_reader_open(machine):
    node = machine.usb(0x04E6, 0x5591, "")  # SCL3711, no product name to match by
    machine.process(321, "pcscd", ["/usr/sbin/pcscd", "--foreground"], open_files=(node,))
    machine.pcsc = PcscListing()
    assert machine.check("reader-conflict", "nfcpy:usb").status == FAIL


def test_ccid_reader_with_socket_activated_pcscd_is_a_warning(machine):
    machine.usb(**ACR122U, ccid=True)
    assert machine.check("reader-conflict", "nfcpy:usb").status == OK  # pcscd not installed
    machine.write("run/pcscd/pcscd.comm", "")
    check = machine.check("reader-conflict", "nfcpy:usb")
    assert check.status == WARN and "CCID" in check.summary


def test_vpcd_on_a_production_kiosk_is_critical(machine):
    machine.installed.add("vsmartcard-vpcd")
    machine.write(VPCD_DRIVER, "")
    machine.vpcd()
    checks = run_checks(None, True, machine.probe())
    check = checks_by_name(checks)["virtual-reader"]
    assert check.status == CRITICAL
    assert "package vsmartcard-vpcd is installed" in check.summary
    assert "any host on TCP port 35963" in check.summary
    assert check.fix == "sudo apt-get purge vsmartcard-vpcd && sudo rm -f /etc/reader.conf.d/vpcd"
    assert ["dpkg-query", "-W", "-f=${Status}", "vsmartcard-vpcd"] in machine.calls
    assert exit_code(checks) == 2
    assert format_human(checks).startswith("kiosk doctor: 1 critical, 1 fail")


def test_vpcd_on_a_development_machine_is_a_warning(machine):
    machine.write(VPCD_DRIVER, "")
    check = machine.check("virtual-reader", production=False)
    assert check.status == WARN
    assert check.fix == f"never ship it on a kiosk; to remove it: sudo rm -f {VPCD_DRIVER}"


def test_vpcd_readers_of_a_running_pcscd_are_not_physical(machine):
    machine.process(4242, "pcscd", ["pcscd", "--foreground", "--config", "/tmp/t/conf"])
    machine.vpcd("/tmp/t/conf/kiosk-vpcd", name="ACS ACR122U Virtual PICC", channel="0x9C40")
    machine.pcsc = PcscListing(readers=("ACS ACR122U Virtual PICC 00 00",))
    checks = checks_by_name(run_checks(None, True, machine.probe()))
    assert checks["reader"].status == FAIL and checks["reader"].summary.startswith("no reader")
    vpcd = checks["virtual-reader"]
    assert vpcd.status == CRITICAL
    assert "/tmp/t/conf/kiosk-vpcd gives pcscd a virtual reader 'ACS ACR122U Virtual PICC'" in vpcd.summary
    assert "TCP port 40000" in vpcd.summary and "sudo kill 4242" in vpcd.fix
    assert machine.check("reader", production=False).status == OK  # development: it counts


def test_every_problem_says_what_to_do(machine):
    machine.usb(**ACR122U, driver="pn533_usb", mode=0o600, ccid=True)
    machine.write("proc/modules", PN533_MODULES)
    machine.write("run/pcscd/pcscd.comm", "")
    machine.libusb = None
    machine.vpcd()
    checks = run_checks("nfcpy:usb:1234:5678", True, machine.probe())
    problems = [c for c in checks if c.status != OK]
    assert {c.name for c in problems} >= {"reader", "libusb", "kernel-driver", "usb-permission",
                                          "virtual-reader"}
    assert all(c.fix for c in problems)
    text = format_human(checks)
    assert text.index("[CRITICAL]") < text.index("[FAIL") < text.index("[OK")
    assert text.count("fix: ") == len(problems)


def test_a_broken_check_does_not_hide_the_others(machine):
    def explode(name):
        raise RuntimeError("linker cache unreadable")
    checks = checks_by_name(run_checks(None, True, machine.probe(find_library=explode)))
    assert checks["libusb"].status == FAIL
    assert "RuntimeError('linker cache unreadable')" in checks["libusb"].summary
    assert checks["virtual-reader"].status == OK and len(checks) == 7


def test_a_probe_breaking_while_gathering_still_reports(machine):
    def explode():
        raise OSError("pcscd socket went away")
    checks = run_checks(None, True, machine.probe(list_pcsc=explode))
    assert [(c.name, c.status) for c in checks] == [("doctor", FAIL)]
    assert exit_code(checks) == 1 and checks[0].fix


def test_json_and_exit_codes():
    checks = [Check("a", OK, "fine"), Check("b", WARN, "hmm", "do x")]
    data = json.loads(to_json(checks))
    assert data == {"status": "warn", "exit_code": 0, "checks": [
        {"name": "a", "status": "ok", "summary": "fine", "fix": ""},
        {"name": "b", "status": "warn", "summary": "hmm", "fix": "do x"}]}
    assert exit_code([]) == 0
    assert exit_code(checks + [Check("c", FAIL, "bad", "fix")]) == 1
    assert exit_code(checks + [Check("c", FAIL, "bad", "f"), Check("d", CRITICAL, "worse", "f")]) == 2
    with pytest.raises(AttributeError):
        checks[0].status = FAIL  # frozen


def test_the_hardware_probe_is_the_drivers_and_loads_nothing_of_the_kiosk():
    """drivers/ imports neither kiosk/ nor ui/ (DESIGN.md section 2), nor nfcpy or pyscard until it probes."""
    code = "import sys, drivers.probe; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                         capture_output=True, text=True, check=True).stdout
    assert not {m.split(".")[0] for m in out.split()} & {"kiosk", "ui", "hub", "nfc", "smartcard"}


# -- the real machine ------------------------------------------------------------------------

def _real_physical_reader() -> bool:
    """Probed apart from doctor: any USB device nfcpy supports, or any CCID (class 0b) one."""
    from nfc.clf.device import usb_device_map
    base = Path("/sys/bus/usb/devices")
    if not base.is_dir():
        return False
    for dev in base.iterdir():
        try:
            ids = (int((dev / "idVendor").read_text(), 16), int((dev / "idProduct").read_text(), 16))
        except (OSError, ValueError):
            continue
        ccid = any((i / "bInterfaceClass").read_text().strip() == "0b" for i in base.glob(dev.name + ":*"))
        if ids in usb_device_map or ccid:
            return True
    return False


def _real_vpcd_present() -> bool:
    confs = Path("/etc/reader.conf.d")
    dpkg = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "vsmartcard-vpcd"],
                          capture_output=True, text=True)
    return (Path(VPCD_DRIVER).exists() or dpkg.stdout.endswith(" installed")
            or any("libifdvpcd" in f.read_text() for f in confs.glob("*") if f.is_file()))


def test_the_real_machine():
    """What doctor says here matches what this machine really has (no pcscd is started)."""
    checks = run_checks(None, production=True)
    by_name = checks_by_name(checks)
    if _real_physical_reader():
        assert by_name["reader"].status == OK, format_human(checks)
    else:
        assert by_name["reader"].status == FAIL, format_human(checks)
        assert by_name["reader"].summary.startswith("no reader")
        assert exit_code(checks) != 0
    if _real_vpcd_present():
        assert by_name["virtual-reader"].status == CRITICAL
        assert exit_code(checks) == 2
    else:
        assert by_name["virtual-reader"].status == OK
    assert json.loads(to_json(checks))["exit_code"] == exit_code(checks)
