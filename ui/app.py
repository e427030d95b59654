"""The Kivy app: it only wires. The service decides; screens show results.

    run_kiosk(config)        # `kiosk run`; the demo passes demo=True and its tap bar (launch/demo.py)

`kiosk run` is full screen and locked down: Escape and F1 do nothing, there is no settings
panel, the window refuses to close, no cursor, no screen blanking, and exactly one input
provider reads the touch screen (two providers on one device turn one touch into two).
`kiosk demo` stays an ordinary window.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)
INPUT_PROVIDERS = {
    "mouse": ("mouse", "mouse,disable_multitouch"),  # SDL: touch screens arrive as mouse events
    "hidinput": ("touchscreen", "probesysfs,provider=hidinput"),
    "mtdev": ("touchscreen", "probesysfs,provider=mtdev"),
}


def no_sound_card(environ=os.environ, snd: Path = Path("/dev/snd")) -> bool:
    """No ALSA devices and no PulseAudio server named: SDL's audio would only fail, loudly."""
    return not snd.exists() and "PULSE_SERVER" not in environ


def _configure_kivy(fullscreen: bool, input_provider: str = "mouse") -> None:
    if no_sound_card():  # a silent mixer, not ALSA errors and Kivy's CRITICAL "Unable to open mixer"
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")  # Kivy must not take over the root logger
    from kivy.config import Config

    Config.set("kivy", "exit_on_escape", "0")
    Config.set("kivy", "desktop", "0" if fullscreen else "1")
    Config.set("kivy", "keyboard_mode", "system")
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    Config.set("graphics", "borderless", "1" if fullscreen else "0")
    Config.set("graphics", "show_cursor", "0" if fullscreen else "1")
    Config.set("graphics", "allow_screensaver", "0")
    Config.set("graphics", "width", "1280")
    Config.set("graphics", "height", "800")
    Config.set("graphics", "resizable", "0" if fullscreen else "1")
    # No multisampling: edges are antialiased by the Smooth* shapes in the kv files instead.
    # Kivy's default (2 samples) tripled every frame under software GL (Mesa llvmpipe, which
    # is what a kiosk without a GPU driver runs): attract 31 -> 11 ms, shopper 59 -> 21 ms
    # per frame on the CI machine, and a tap's first frame waits behind one or two of those.
    Config.set("graphics", "multisamples", "0")
    for option in Config.options("input"):  # exactly one provider per device
        Config.remove_option("input", option)
    name, value = INPUT_PROVIDERS.get(input_provider, INPUT_PROVIDERS["mouse"])
    Config.set("input", name, value)


def run_kiosk(config, demo: bool = False, max_seconds: float | None = None, screenshot: str | None = None,
              below=None) -> int:
    """The kiosk on screen: Kivy configured, the service built (enrolled or not) with Kivy's
    clock as its dispatch, and handed to the App. `below(service)`: the demo's tap bar."""
    locked_down = config.fullscreen and not demo
    _configure_kivy(locked_down, config.input_provider)
    from kivy.base import ExceptionHandler, ExceptionManager

    from kiosk.app import open_service
    from ui.kiosk_app import KioskApp, clock_dispatch

    class KeepRunning(ExceptionHandler):
        """Log an unexpected exception in a frame and keep the kiosk on screen."""

        def handle_exception(self, inst):
            if isinstance(inst, KeyboardInterrupt):
                return ExceptionManager.RAISE
            log.exception("unexpected error in the UI loop", exc_info=inst)
            return ExceptionManager.PASS

    ExceptionManager.add_handler(KeepRunning())
    service = open_service(config, dispatch=clock_dispatch)
    app = KioskApp(service, max_seconds=max_seconds, screenshot=screenshot, locked_down=locked_down, below=below)
    app.run()
    return 0
