"""Colours, sizes and the font: one place, checked by tests (WCAG AA contrast, 9 mm targets).

Pure Python; `register_fonts()` is the only function that touches Kivy.
"""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

FONTS = Path(__file__).parent / "fonts"
FONT_REGULAR = FONTS / "KioskSans-Regular.ttf"
FONT_BOLD = FONTS / "KioskSans-Bold.ttf"

TOUCH_MM = 9.0  # smallest touch target (DESIGN section 8)
TOUCH_DP = 64  # what the screens use: 17 mm at 96 dpi, 9 mm even at 180 dpi

# name: (foreground, background) pairs the screens actually draw; all must reach 4.5:1.
INK = (0.10, 0.11, 0.13, 1)
INK_SOFT = (0.27, 0.30, 0.35, 1)
PAPER = (0.95, 0.96, 0.97, 1)
CARD = (1, 1, 1, 1)
NIGHT = (0.07, 0.11, 0.16, 1)
WHITE = (1, 1, 1, 1)
MIST = (0.85, 0.90, 0.95, 1)
PRIMARY = (0.05, 0.33, 0.58, 1)
SECONDARY = (0.20, 0.24, 0.30, 1)
HERE = (0.04, 0.40, 0.18, 1)
ELSEWHERE = (0.05, 0.30, 0.58, 1)
ONLINE = (0.33, 0.22, 0.55, 1)
WARN_DARK = (1.0, 0.80, 0.40, 1)  # on NIGHT
ALERT_DARK = (1.0, 0.62, 0.52, 1)  # on NIGHT
WARN = (0.62, 0.22, 0.02, 1)  # on PAPER / CARD
OK_DARK = (0.60, 0.95, 0.60, 1)
OFFER = (0.50, 0.08, 0.30, 1)
CONSENT = (0.99, 0.95, 0.82, 1)

CONTRAST_PAIRS = {
    "text on paper": (INK, PAPER), "soft text on card": (INK_SOFT, CARD), "soft text on paper": (INK_SOFT, PAPER),
    "headline on night": (WHITE, NIGHT), "subline on night": (MIST, NIGHT), "button": (WHITE, PRIMARY),
    "secondary button": (WHITE, SECONDARY), "on shelf": (HERE, CARD), "elsewhere": (ELSEWHERE, CARD),
    "online only": (ONLINE, CARD), "offline badge": (WARN_DARK, NIGHT), "reader notice": (ALERT_DARK, NIGHT),
    "warning": (WARN, PAPER), "online badge": (OK_DARK, NIGHT), "offer": (OFFER, CARD),
    "consent text": (INK, CONSENT), "warning on card": (WARN, CARD),
}


def _luminance(rgba) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgba[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg, bg) -> float:
    """WCAG 2 contrast ratio (1 to 21)."""
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def register_fonts() -> bool:
    """Make Kiosk Sans Kivy's default font (every Label, Button and TextInput)."""
    from kivy.core.text import DEFAULT_FONT, LabelBase

    if not (FONT_REGULAR.is_file() and FONT_BOLD.is_file()):
        log.error("the kiosk font is missing (run `python -m ui.build`); Thai will show as boxes")
        return False
    LabelBase.register(DEFAULT_FONT, fn_regular=str(FONT_REGULAR), fn_bold=str(FONT_BOLD))
    return True
