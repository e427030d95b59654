"""Technician mode: health (reader, hub reachability and latency, outbox, parked events, last
sync, free disk, version), a live reader test, provisioning (hub URL + enrollment code), and
the device's language and timeouts. Reached by a hidden long press plus badge or PIN."""
from __future__ import annotations

import time

from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.screenmanager import Screen

from ui import format as fmt
from ui.i18n import tr
from ui.widgets import KLabel

TABS = ("health", "reader", "setup", "settings")


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
    __events__ = ("on_tab_chosen", "on_refresh", "on_sync", "on_enroll", "on_save", "on_exit")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.health = None
        self.reads: list = []

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
        self.select("health" if enrolled else "setup")

    def select(self, tab: str) -> None:
        self.tab = tab
        self.ids.pages.current = tab
        self.message = ""
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

    def clear(self) -> None:
        self.health, self.reads, self.code, self.message = None, [], "", ""
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
