"""The UI's build step: the merged font, the compiled message catalogs and the tap sound.

    python -m ui.build            # what scripts/bootstrap.sh runs after `pip install`
    python -m ui.build --extract  # refresh ui/locale/kiosk.pot and merge it into the .po files

Kivy draws one font per label with no per-character fallback, so the kiosk ships one font
that covers Latin (with Vietnamese), Cyrillic and Thai: Noto Sans merged with Noto Sans Thai
(both OFL-1.1, no reserved name; ui/fonts/OFL.txt). Thai marks stack higher than Latin, so
the merged font takes the larger vertical metrics of the two. Idempotent: outputs newer than
their inputs are left alone.
"""
from __future__ import annotations

import argparse
import math
import struct
import subprocess
import sys
import wave
from pathlib import Path

UI = Path(__file__).resolve().parent
FONTS = UI / "fonts"
LOCALE = UI / "locale"
SOUNDS = UI / "sounds"
NOTO_DIRS = [Path("/usr/share/fonts/truetype/noto"), Path("/usr/share/fonts/noto")]
FAMILY = "Kiosk Sans"
LANGUAGES = ("en", "vi", "ru", "th")
DOMAIN = "kiosk"


def _noto(name: str) -> Path:
    for directory in NOTO_DIRS:
        if (directory / name).is_file():
            return directory / name
    raise SystemExit(f"ui.build: {name} not found; install Debian's fonts-noto-core")


def build_fonts(force: bool = False) -> list[Path]:
    from fontTools import merge

    out = []
    for style in ("Regular", "Bold"):
        sources = [_noto(f"NotoSans-{style}.ttf"), _noto(f"NotoSansThai-{style}.ttf")]
        target = FONTS / f"KioskSans-{style}.ttf"
        out.append(target)
        if not force and target.is_file() and all(target.stat().st_mtime >= s.stat().st_mtime for s in sources):
            continue
        font = merge.Merger().merge([str(s) for s in sources])
        from fontTools.ttLib import TTFont
        metrics = [TTFont(str(s)) for s in sources]
        hhea, os2 = font["hhea"], font["OS/2"]
        hhea.ascent = max(m["hhea"].ascent for m in metrics)
        hhea.descent = min(m["hhea"].descent for m in metrics)
        os2.usWinAscent = max(m["OS/2"].usWinAscent for m in metrics)
        os2.usWinDescent = max(m["OS/2"].usWinDescent for m in metrics)
        for record in font["name"].names:
            if record.nameID in (1, 16):
                record.string = FAMILY
            elif record.nameID in (4,):
                record.string = f"{FAMILY} {style}"
            elif record.nameID == 6:
                record.string = f"KioskSans-{style}"
        FONTS.mkdir(parents=True, exist_ok=True)
        font.save(str(target))
    return out


def compile_catalogs() -> list[Path]:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    out = []
    for language in LANGUAGES:
        po = LOCALE / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        mo = po.with_suffix(".mo")
        with po.open("rb") as f:
            catalog = read_po(f, locale=language)
        with mo.open("wb") as f:
            write_mo(f, catalog, use_fuzzy=False)
        out.append(mo)
    return out


def extract() -> None:
    """pybabel extract (Python and .kv files) + update; translators then fill the .po files."""
    cfg = UI / "babel.cfg"
    pot = LOCALE / f"{DOMAIN}.pot"
    pybabel = [sys.executable, "-m", "babel.messages.frontend"]
    subprocess.run([*pybabel, "extract", "-F", str(cfg), "-k", "_", "-k", "ngettext:1,2", "--no-location",
                    "--omit-header", "-o", str(pot), str(UI)], check=True)
    for language in LANGUAGES:
        po = LOCALE / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        if po.is_file():
            subprocess.run([*pybabel, "update", "-i", str(pot), "-o", str(po), "-l", language, "--no-fuzzy-matching",
                            "--ignore-obsolete"], check=True)
        else:
            subprocess.run([*pybabel, "init", "-i", str(pot), "-o", str(po), "-l", language], check=True)


def build_sound() -> Path:
    """A soft two-note chime (120 ms), written with the standard library."""
    target = SOUNDS / "tap.wav"
    if target.is_file():
        return target
    rate, frames = 22050, []
    for freq, start, length in ((880.0, 0.0, 0.07), (1320.0, 0.05, 0.09)):
        for i in range(int(length * rate)):
            t = i / rate
            envelope = math.sin(math.pi * t / length) ** 2
            index = int(start * rate) + i
            while len(frames) <= index:
                frames.append(0.0)
            frames[index] += 0.25 * envelope * math.sin(2 * math.pi * freq * t)
    SOUNDS.mkdir(parents=True, exist_ok=True)
    with wave.open(str(target), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(max(-1, min(1, s)) * 32767)) for s in frames))
    return target


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ui.build")
    p.add_argument("--extract", action="store_true", help="refresh the .pot and merge it into the .po files")
    p.add_argument("--force", action="store_true", help="rebuild the font even when it looks current")
    args = p.parse_args(argv)
    if args.extract:
        extract()
    built = [*build_fonts(args.force), *compile_catalogs(), build_sound()]
    print("ui.build: " + ", ".join(str(b.relative_to(UI)) for b in built))
    return 0


if __name__ == "__main__":
    sys.exit(main())
