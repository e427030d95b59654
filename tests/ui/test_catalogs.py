"""The four catalogs are complete (no English left, plural forms right), compiled, and the
bundled font has a glyph for every character any of them (or the demo world) can show."""
import re

from babel.messages.pofile import read_po

from hub import demo
from ui import build, theme
from ui.widgets import KEYBOARDS, key_face

LOCALE = build.LOCALE
PLURALS = {"en": 2, "vi": 1, "ru": 3, "th": 1}
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def catalog(lang):
    with (LOCALE / lang / "LC_MESSAGES" / "kiosk.po").open("rb") as f:
        return read_po(f, locale=lang)


def test_every_message_is_translated_with_the_right_plural_forms_and_placeholders():
    template_ids = {m.id for m in read_po((LOCALE / "kiosk.pot").open("rb")) if m.id}
    assert len(template_ids) > 100
    for lang in ("vi", "ru", "th"):
        cat = catalog(lang)
        assert cat.num_plurals == PLURALS[lang]
        assert {m.id for m in cat if m.id} == template_ids, lang
        for m in cat:
            if not m.id:
                continue
            strings = m.string if isinstance(m.string, tuple) else (m.string,)
            ids = m.id if isinstance(m.id, tuple) else (m.id,)
            assert len(strings) == (PLURALS[lang] if isinstance(m.id, tuple) else 1), (lang, m.id)
            for s in strings:
                assert s and s not in ids, f"{lang}: {m.id!r} is left in English"
                assert sorted(PLACEHOLDER.findall(s)) == sorted(set(PLACEHOLDER.findall(ids[0]))), (lang, m.id)
            assert not m.fuzzy


def test_catalogs_are_compiled_and_load():
    import gettext
    for lang in ("vi", "ru", "th"):
        t = gettext.translation("kiosk", LOCALE, languages=[lang])
        assert t.gettext("Tap your phone or card") != "Tap your phone or card"
    ru = gettext.translation("kiosk", LOCALE, languages=["ru"])
    forms = [ru.ngettext("Wrong PIN. %(n)d try left.", "Wrong PIN. %(n)d tries left.", n) % {"n": n} for n in (1, 3, 5)]
    assert forms == ["Неверный PIN-код. Осталась 1 попытка.", "Неверный PIN-код. Осталось 3 попытки.",
                     "Неверный PIN-код. Осталось 5 попыток."]


def test_one_font_covers_every_character_the_kiosk_can_show():
    from fontTools.ttLib import TTFont
    shown = set()
    for lang in ("en", "vi", "ru", "th"):
        for m in catalog(lang):
            for s in (m.string if isinstance(m.string, tuple) else (m.string,)):
                shown |= set(s or "")
    for _, full, _ in demo.SHOPPERS:
        shown |= set(full)
    for p in demo.products():
        shown |= set(p["title"])
    for rows in KEYBOARDS.values():
        shown |= {c for row in rows for c in "".join(key_face(ch) for ch in row)}
    shown |= set("Tiếng ViệtРусскийไทย₫฿₽£•·—…-+")
    shown -= {"\n", " "}
    for path in (theme.FONT_REGULAR, theme.FONT_BOLD):
        cmap = TTFont(str(path)).getBestCmap()
        missing = sorted(c for c in shown if ord(c) not in cmap)
        assert not missing, f"{path.name} lacks {missing}"
    assert "SIL OPEN FONT LICENSE" in (build.FONTS / "OFL.txt").read_text()
