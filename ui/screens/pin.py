"""PIN entry for staff (after a badge tap) and technicians (badge, or the kiosk's own
technician PIN). Shows dots, never digits; the verdict comes from the service."""
from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.screenmanager import Screen

from ui import format as fmt
from ui.i18n import tr

MAX_PIN = 12


class PinScreen(Screen):
    role = StringProperty("staff")  # staff | technician
    who = StringProperty("")
    dots = StringProperty("")
    message = StringProperty("")
    busy = BooleanProperty(False)
    badge_tapped = BooleanProperty(False)
    __events__ = ("on_pin", "on_cancel")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._pin = ""

    def ask(self, role: str, who: str = "", badge: bool = False) -> None:
        self.role, self.who, self.badge_tapped = role, who, badge
        self._pin, self.dots, self.busy = "", "", False
        self.message = ""

    def digit(self, d: str) -> None:
        if self.busy or len(self._pin) >= MAX_PIN:
            return
        self._pin += d
        self.dots = fmt.pin_dots(len(self._pin))
        self.message = ""

    def delete(self) -> None:
        self._pin = self._pin[:-1]
        self.dots = fmt.pin_dots(len(self._pin))

    def clear_pin(self) -> None:
        self._pin, self.dots = "", ""

    def submit(self) -> None:
        if self.busy:
            return
        if len(self._pin) < 4:
            self.message = tr._("Enter your PIN (at least 4 digits), then press Unlock.")
            return
        pin, self._pin, self.dots = self._pin, "", ""
        self.busy = True
        self.message = tr._("Checking...")
        self.dispatch("on_pin", pin)

    def refused(self, result) -> None:
        self.busy = False
        if result.code == "locked":
            self.message = fmt.locked_for(result.locked_for_s, tr._, tr.ngettext)
        elif result.code == "wrong_pin":
            self.message = fmt.tries_left(result.tries_left, tr._, tr.ngettext)
        elif result.code == "offline":
            self.message = tr._("The hub cannot be reached, so staff PINs cannot be checked. Try again in a minute.")
        elif result.code == "no_local_pin":
            self.message = tr._("No technician PIN is set on this kiosk. Press Cancel, then tap a technician badge.")
        elif result.code == "badge_required":
            self.message = tr._("Press Cancel, tap your badge on the reader again, then enter your PIN.")
        else:
            self.message = tr._("This badge cannot unlock this kiosk. Ask a manager.")

    def tap_ignored(self) -> None:
        """A card or badge tapped while the PIN is typed: read as nothing, and the person is told."""
        if not self.busy:
            self.message = tr._("Cards are not read while a PIN is typed. To use a badge, press Cancel first.")

    def clear(self) -> None:
        self._pin = ""
        self.dots = self.message = self.who = ""
        self.busy = self.badge_tapped = False

    def on_pin(self, pin: str) -> None:
        pass

    def on_cancel(self) -> None:
        pass
