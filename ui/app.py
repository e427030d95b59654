"""The Kivy app: it only wires. The service decides; screens show results.

    run_kiosk(config, demo=True)
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)
KV_DIR = Path(__file__).parent / "kv"


def _configure_kivy(fullscreen: bool) -> None:
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")  # Kivy must not take over the root logger
    from kivy.config import Config

    Config.set("kivy", "exit_on_escape", "0")
    Config.set("kivy", "desktop", "0" if fullscreen else "1")
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    Config.set("graphics", "width", "1280")
    Config.set("graphics", "height", "800")
    Config.set("input", "mouse", "mouse,disable_multitouch")


def run_kiosk(config, demo: bool = False, max_seconds: float | None = None, screenshot: str | None = None) -> int:
    _configure_kivy(config.fullscreen and not demo)
    from kivy.base import ExceptionHandler, ExceptionManager

    from ui.kiosk_app import KioskApp

    class KeepRunning(ExceptionHandler):
        """Log an unexpected exception in a frame and keep the kiosk on screen."""

        def handle_exception(self, inst):
            if isinstance(inst, KeyboardInterrupt):
                return ExceptionManager.RAISE
            log.exception("unexpected error in the UI loop", exc_info=inst)
            return ExceptionManager.PASS

    ExceptionManager.add_handler(KeepRunning())

    app = KioskApp(config, demo=demo, max_seconds=max_seconds, screenshot=screenshot)
    app.run()
    return 0
