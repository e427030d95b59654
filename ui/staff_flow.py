"""The staff and technician flows of KioskApp: PIN, unlock, technician tabs, provisioning
and settings. A mixin so the app module stays small; it only wires screens to service calls,
blocking ones through `self.background` (results come back on the Kivy clock)."""
from __future__ import annotations

from kiosk.app import build_service
from kiosk.results import BadgeResult, StaffResult
from kiosk.service import KioskService


class StaffFlow:
    def ask_pin(self, role: str, who: str = "", badge: BadgeResult | None = None) -> None:
        if self.mode == "shopper" and self.service:
            self.service.end_session("staff", publish=False)
            self.shopper.clear()
        self._badge = badge
        self.mode = "pin"
        self.pin.ask(role, who, badge=badge is not None)
        self.sm.current = "pin"
        self._restart_idle()

    def technician_entry(self) -> None:
        if self.mode != "attract":
            return
        if self.service is None and not self.kiosk_config.technician_pin_hash:
            self._open_technician()  # nothing to protect yet: a fresh kiosk opens on Set up
            return
        self.ask_pin("technician")

    def submit_pin(self, pin: str) -> None:
        badge = self._badge
        if badge is not None and self.service is not None:
            self.background.run(self.service.unlock_staff, badge, pin, then=self._unlocked)
        elif self.service is not None:
            self.background.run(self.service.unlock_technician, pin, then=self._unlocked)
        else:
            self.background.run(KioskService.check_technician_pin, self.kiosk_config, pin, then=self._unlocked)

    def _unlocked(self, result: StaffResult) -> None:
        if self.mode != "pin":
            return
        if not result.ok:
            self.pin.refused(result)
            return
        self.pin.clear()
        if result.role == "technician":
            self._open_technician()
        else:
            self.mode = "staff"
            self.staff.begin(result.display_name)
            self.sm.current = "staff"
            self._restart_idle()

    def _open_technician(self) -> None:
        self.mode = "technician"
        self.technician.begin(self.kiosk_config, self.service is not None,
                              self.service.hub_url if self.service else self.kiosk_config.hub_url)
        self.sm.current = "technician"
        self._restart_idle()

    def technician_tab(self, tab: str) -> None:
        if self.service is None:
            return
        if tab == "reader":
            self.service.start_reader_test(self.technician.add_read)
        else:
            self.service.stop_reader_test()
        if tab == "health":
            self.refresh_health()

    def refresh_health(self) -> None:
        if self.service is not None:
            self.technician.busy = True
            self.background.run(self.service.check_health, then=self.technician.show_health)

    def sync_now(self) -> None:
        if self.service is not None:
            self.technician.busy = True
            self.background.run(self.service.sync_now, then=lambda sent: self.refresh_health())

    def provision(self, hub_url: str, code: str) -> None:
        if self.service is not None:
            self.background.run(self.service.provision, hub_url, code, then=self._provisioned)
        else:
            self.background.run(KioskService.enroll_device, self.kiosk_config, hub_url, code, then=self._provisioned)

    def _provisioned(self, result) -> None:
        self.technician.enrolled_result(result)
        if not result.ok:
            return
        old = self.service
        config = self.kiosk_config.replace(hub_url=result.hub_url)
        if old is None:
            self._attach_service(build_service(config, dispatch=self.dispatch_ui))
        else:  # the old service lets go of the reader first; the new one takes the same reader
            self.service = None
            self.background.run(old.stop, then=lambda _: self._attach_service(
                build_service(config, reader=old.reader, dispatch=self.dispatch_ui)), keep=True)

    def _attach_service(self, service) -> None:
        self.service = service
        self.kiosk_config = service.config
        service.subscribe(self.on_result)
        service.start()
        self.attract.enrolled = True
        self.technician.enrolled = True

    def save_settings(self, values: dict) -> None:
        if self.service is None:
            self.technician.saved("not enrolled")
            return

        def save():
            try:
                return self.service.update_settings(**values)
            except ValueError as exc:
                return exc

        def done(result):
            if isinstance(result, ValueError):
                self.technician.saved(str(result))
            else:
                self.kiosk_config = result
                self.technician.saved()
        self.background.run(save, then=done)
