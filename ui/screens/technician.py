"""Technician mode: health (reader, hub reachability and latency, outbox, parked events, last
sync, free disk, version), a live reader test, provisioning (hub URL + enrollment code), and
the device's language and timeouts, and changing the technician PIN (current PIN, the new one
twice; checked and hashed off the UI thread, kept hashed in the device settings). Reached by a
hidden long press plus badge or PIN."""
from __future__ import annotations

import time

from kivy.properties import BooleanProperty, DictProperty, NumericProperty, StringProperty
from kivy.uix.screenmanager import Screen

from ui import format as fmt
from ui.i18n import tr
from ui.widgets import KLabel

TABS = ("health", "reader", "setup", "settings")  # and "pin", reached from Settings
PIN_FIELDS = ("old", "new", "again")


class HealthRow(KLabel):
    pass


class TechnicianScreen(Screen):
    tab = StringProperty("health")
    message = StringProperty("")
    hub_url = StringProperty("")
    code = StringProperty("")
    field = StringProperty("hub_url")  # which setup field the keyboard types into
    busy = BooleanProperty(False)
    enrolled = BooleanProperty(True)
    language = StringProperty("en")
    idle_warning_s = NumericProperty(20)
    idle_timeout_s = NumericProperty(30)
    staff_idle_timeout_s = NumericProperty(15)
    pin_field = StringProperty("old")  # which PIN field the keypad types into
    pin_dots = DictProperty({"old": "", "new": "", "again": ""})
    has_pin = BooleanProperty(True)  # a technician PIN is set: the current one is asked for
    pin_ok = BooleanProperty(False)  # the message says the PIN was changed
    __events__ = ("on_tab_chosen", "on_refresh", "on_sync", "on_enroll", "on_save", "on_change_pin", "on_exit")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.health = None
        self.reads: list = []
        self._pins = dict.fromkeys(PIN_FIELDS, "")

    def begin(self, config, enrolled: bool, hub_url: str) -> None:
        self.enrolled = enrolled
        self.hub_url = hub_url
        self.code = ""
        self.language = config.language
        self.idle_warning_s, self.idle_timeout_s = config.idle_warning_s, config.idle_timeout_s
        self.staff_idle_timeout_s = config.staff_idle_timeout_s
        self.reads = []
        self.health = None
        self.message = ""
        self.has_pin = bool(config.technician_pin_hash)
        self.clear_pins()
        self.select("health" if enrolled else "setup")

    def select(self, tab: str) -> None:
        self.tab = tab
        self.ids.pages.current = tab
        self.message = ""
        self.pin_ok = False
        if tab == "pin":
            self.clear_pins()
        self.render()
        self.dispatch("on_tab_chosen", tab)

    # -- health ------------------------------------------------------------------
    def show_health(self, health) -> None:
        self.health = health
        self.busy = False
        self.render()

    def render(self, *args) -> None:
        self._render_health()
        self._render_reads()

    def _render_health(self) -> None:
        grid = self.ids.health
        grid.clear_widgets()
        h = self.health
        if h is None:
            grid.add_widget(HealthRow(text=tr._("Checking...") if self.enrolled else tr._("This kiosk is not set up yet. Use Set up.")))
            return
        s, language = h.status, tr.language
        reader = {"connected": tr._("connected"), "starting": tr._("starting"),
                  "disconnected": tr._("not connected: check the USB cable"),
                  "stopped": tr._("stopped")}.get(s.reader_state, s.reader_state)
        hub = (tr._("reachable") if h.hub_reachable else tr._("not reachable: check the network")) + f"  ({s.hub_url})"
        rows = [
            (tr._("Reader"), f"{reader}  ({s.reader_detail})" if s.reader_detail else reader),
            (tr._("Hub"), hub),
        ]
        if s.device_revoked:
            rows.append((tr._("Fleet"), tr._("This kiosk was removed from the fleet: enroll it again (Set up). "
                                            "Its queued events are kept and sent after that.")))
        elif s.device_refused:
            rows.append((tr._("Device token"),
                         tr._("REFUSED by the hub: no shopper profile is shown. Enroll this kiosk again (Set up).")))
        rows += [
            (tr._("Hub latency"), fmt.latency(h.hub_latency_ms, language)),
            (tr._("Events waiting"), str(s.outbox_depth)),
            (tr._("Parked events"), str(s.parked) + ("  " + tr._("(see kiosk outbox list)") if s.parked else "")),
            (tr._("Last sync"), fmt.ago(time.time() - s.last_sync, language) if s.last_sync else tr._("never")),
            (tr._("Free disk"), fmt.disk(s.free_disk_bytes, language) + ("  " + tr._("LOW: free space") if s.low_disk else "")),
            (tr._("Version"), s.version),
            (tr._("Device"), f"{s.device_id} · {s.store_id}"),
        ]
        for name, value in rows:
            grid.add_widget(HealthRow(text=name, bold=True))
            grid.add_widget(HealthRow(text=value))

    # -- reader test ---------------------------------------------------------------
    def add_read(self, shown) -> None:
        self.reads = [shown, *self.reads][:4]
        self._render_reads()

    def _render_reads(self) -> None:
        box = self.ids.reads
        box.clear_widgets()
        meanings = {"card": tr._("shopper card"), "phone": tr._("phone"), "product": tr._("product tag"),
                    "unreadable": tr._("cannot be used"), "hold_still": tr._("moved during the read: hold it still")}
        for r in self.reads:
            lines = [f"{meanings.get(r.meaning, r.meaning)}: {r.detail}",
                     f"{r.technology} {r.tag_type}  UID {r.uid or '—'}  {r.read_ms:.1f} ms", *r.records[:3]]
            box.add_widget(HealthRow(text="\n".join(lines), shorten=False, height="124dp", valign="top"))
        if not self.reads:
            box.add_widget(HealthRow(text=tr._("Hold any card, phone or product tag on the reader.")))

    # -- set up --------------------------------------------------------------------
    def key(self, char: str) -> None:
        if self.field == "code":
            self.code = (self.code + char.upper())[:64]
        else:
            self.hub_url = (self.hub_url + char)[:200]

    def delete(self) -> None:
        if self.field == "code":
            self.code = self.code[:-1]
        else:
            self.hub_url = self.hub_url[:-1]

    def enroll(self) -> None:
        if not self.hub_url or not self.code:
            self.message = tr._("Type the hub address and the enrollment code, then press Enroll.")
            return
        self.busy = True
        self.message = tr._("Enrolling...")
        self.dispatch("on_enroll", self.hub_url, self.code)

    def enrolled_result(self, result) -> None:
        self.busy = False
        if result.ok:
            self.enrolled = True
            self.code = ""
            self.message = tr._("Enrolled: %(store)s (%(brand)s). The kiosk is ready.") % {
                "store": result.store_name, "brand": result.brand_name}
        else:
            self.message = {
                "bad_url": tr._("That is not a web address. It starts with https:// or http://"),
                "insecure_url": tr._("This hub address is not secure (http:// on another machine). Use https://"),
                "offline": tr._("The hub did not answer. Check the address and the network, then try again."),
                "events_waiting": tr._("Events are still waiting for the current hub. Press Sync now on Health first."),
            }.get(result.code, tr._("The hub refused this code. Check it, or ask for a new one."))

    # -- settings ------------------------------------------------------------------
    def step(self, name: str, delta: float) -> None:
        setattr(self, name, max(5, min(600, getattr(self, name) + delta)))

    def save(self) -> None:
        self.dispatch("on_save", {"language": self.language, "idle_warning_s": self.idle_warning_s,
                                  "idle_timeout_s": self.idle_timeout_s,
                                  "staff_idle_timeout_s": self.staff_idle_timeout_s})

    def saved(self, error: str = "") -> None:
        self.message = tr._("Saved.") if not error else tr._("Not saved: the warning must come before the reset.")

    # -- technician PIN ------------------------------------------------------------
    def clear_pins(self) -> None:
        self._pins = dict.fromkeys(PIN_FIELDS, "")
        self.pin_dots = dict.fromkeys(PIN_FIELDS, "")
        self.pin_field = "old" if self.has_pin else "new"

    def _typed(self, field: str, value: str) -> None:
        self._pins[field] = value
        self.pin_dots = {**self.pin_dots, field: fmt.pin_dots(len(value))}

    def pin_digit(self, digit: str) -> None:
        if self.busy:
            return
        field = self.pin_field
        if len(self._pins[field]) < 12:
            self._typed(field, self._pins[field] + digit)
        self.message, self.pin_ok = "", False

    def pin_delete(self) -> None:
        self._typed(self.pin_field, self._pins[self.pin_field][:-1])

    def pin_clear(self) -> None:
        self._typed(self.pin_field, "")

    def change_pin(self) -> None:
        if self.busy:
            return
        old, new, again = (self._pins[f] for f in PIN_FIELDS)
        if (self.has_pin and not old) or not new or not again:
            self.message = (tr._("Enter the current PIN, then the new PIN twice.") if self.has_pin
                            else tr._("Enter the new PIN twice."))
            return
        self.busy, self.pin_ok = True, False
        self.message = tr._("Checking...")
        self.clear_pins()
        self.dispatch("on_change_pin", old, new, again)

    def pin_changed(self, result) -> None:
        """The verdict of a PIN change (a StaffResult), on the UI thread."""
        self.busy = False
        self.pin_ok = result.ok
        if result.ok:
            self.has_pin = True
            self.clear_pins()
            self.message = tr._("The technician PIN is changed. Use the new PIN from now on.")
        elif result.code == "locked":
            self.message = fmt.locked_for(result.locked_for_s, tr._, tr.ngettext)
        elif result.code == "wrong_pin":
            self.message = " ".join((tr._("The current PIN is wrong."),
                                     fmt.tries_left(result.tries_left, tr._, tr.ngettext)))
        elif result.code == "mismatch":
            self.pin_field = "new"
            self.message = tr._("The two new PINs are not the same. Enter the new PIN twice again.")
        elif result.code == "same_pin":
            self.pin_field = "new"
            self.message = tr._("The new PIN is the current one. Choose another.")
        elif result.code == "not_saved":
            self.message = tr._("The new PIN could not be saved. Try again, or run kiosk doctor.")
        else:  # weak_pin
            self.pin_field = "new"
            self.message = tr._("Choose 6 to 12 digits, not a run like 123456 or 111111.")

    def on_change_pin(self, old: str, new: str, again: str) -> None:
        """The router changes it through the service (hashed off the UI thread) and hands the
        verdict back to `pin_changed`."""

    def clear(self) -> None:
        self.health, self.reads, self.code, self.message = None, [], "", ""
        self._pins = dict.fromkeys(PIN_FIELDS, "")
        self.pin_dots = dict.fromkeys(PIN_FIELDS, "")
        self.busy = self.pin_ok = False
        self.ids.health.clear_widgets()
        self.ids.reads.clear_widgets()

    def on_tab_chosen(self, tab: str) -> None:
        pass

    def on_refresh(self) -> None:
        pass

    def on_sync(self) -> None:
        pass

    def on_enroll(self, hub_url: str, code: str) -> None:
        pass

    def on_save(self, values: dict) -> None:
        pass

    def on_exit(self) -> None:
        pass
