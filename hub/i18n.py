"""The hub's web pages in en, vi, ru and th: gettext catalogs with English msgids, as the kiosk's
(ui/i18n.py), extracted by Babel and read at run time (no build step, nothing compiled to ship).

    hub/babel.cfg                            what is extracted: hub/**.py, hub/templates/**.html
    hub/locale/hub.pot                       the extracted msgids
    hub/locale/<lang>/LC_MESSAGES/hub.po     their translations (en stays empty: the msgid is the text)

Texts are str.format templates with named fields, formatted after translation:

    templates:  {{ _("Kiosks") }}   {{ _("As of {time}", time=shown_at) }}
                {{ ngettext("{n} kiosk in the fleet", "{n} kiosks in the fleet", total) }}
    Python:     web.gettext(lang, "Sign in")   web.ngettext(lang, "{n} day ago", "{n} days ago", n)
                (or hub.i18n.gettext / ngettext; in the hub's Python every gettext, ngettext and `_`
                call takes the language FIRST, that is what the extractor expects)
    a msgid translated later (a refusal's message, a table of labels): N_("There is no such page.")

`ngettext` passes n to format as `n`. Values are formatted only when given (`_("{x}")` without
values is shown as is); a translation whose fields do not format falls back to the English text.
Output is plain text: Jinja autoescapes it, values included. JS strings belong in the HTML (data-
attributes rendered with `_()`), never in the .js files.

    python -m hub.i18n extract   # refresh hub.pot, merge it into the four .po files; then fill the msgstr
    python -m hub.i18n check     # exit 1 listing every msgid untranslated in vi, ru or th (or not
                                 # yet extracted), and every translation that drops or adds a {field}
"""
from __future__ import annotations

import argparse
import gettext as _gettext
import io
import logging
import string
import sys
import threading
from pathlib import Path

log = logging.getLogger(__name__)
HUB = Path(__file__).resolve().parent
LOCALE_DIR = HUB / "locale"
BABEL_CFG = HUB / "babel.cfg"
DOMAIN = "hub"
LANGUAGES = ("en", "vi", "ru", "th")
DEFAULT_LANGUAGE = "en"
TRANSLATED = ("vi", "ru", "th")  # `check` wants every msgid translated in these
LANG_NAMES = {"en": "English", "vi": "Tiếng Việt", "ru": "Русский", "th": "ไทย"}  # each in its own language
PY_KEYWORDS = ("gettext", "ngettext", "_")  # called with the language first in the hub's Python
_BAD_FORMAT = (KeyError, IndexError, ValueError, AttributeError, TypeError)

HEADER = """\
# Translations template of the hub's web pages (nfc-kiosk).
# The msgids are English; keep every {field}. New ones: `python -m hub.i18n extract`,
# then fill their msgstr and run `python -m hub.i18n check`."""

_loaded: dict[str, _gettext.NullTranslations] = {}
_lock = threading.Lock()


def N_(msgid: str) -> str:  # noqa: N802 - the gettext convention
    """Mark a msgid for extraction; it is translated where it is shown."""
    return msgid


# -- run time --------------------------------------------------------------------------
def po_path(lang: str, locale_dir: Path = LOCALE_DIR) -> Path:
    return locale_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(path: Path, lang: str):
    from babel.messages.pofile import read_po

    with path.open("rb") as f:
        return read_po(f, locale=lang, domain=DOMAIN)


def compile_po(path: Path, lang: str) -> _gettext.GNUTranslations:
    """A .po file as gettext translations, compiled in memory (fuzzy entries left out)."""
    from babel.messages.mofile import write_mo

    buffer = io.BytesIO()
    write_mo(buffer, read_catalog(path, lang), use_fuzzy=False)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def translations(lang: str) -> _gettext.NullTranslations:
    """The language's translations (read once per process); English, or anything unknown: none."""
    found = _loaded.get(lang)
    if found is not None:
        return found
    with _lock:
        if lang not in _loaded:
            po = po_path(lang)
            if lang == DEFAULT_LANGUAGE or lang not in LANGUAGES:
                _loaded[lang] = _gettext.NullTranslations()
            elif not po.is_file():
                log.error("no catalog for %r at %s; showing English", lang, po)
                _loaded[lang] = _gettext.NullTranslations()
            else:
                _loaded[lang] = compile_po(po, lang)
        return _loaded[lang]


def load_all() -> None:
    """Read every catalog now (a broken .po fails at start, not on a shopper's page)."""
    for lang in LANGUAGES:
        translations(lang)


def _format(text: str, english: str, values: dict) -> str:
    if not values:
        return text
    try:
        return text.format(**values)
    except _BAD_FORMAT:
        if text is not english:
            log.warning("a translation does not format: %r", english)
        try:
            return english.format(**values)
        except _BAD_FORMAT:
            return english


def gettext(lang: str, msgid: str, /, **values) -> str:
    return _format(translations(lang).gettext(msgid), msgid, values)


def ngettext(lang: str, singular: str, plural: str, n: int, /, **values) -> str:
    english = singular if n == 1 else plural
    return _format(translations(lang).ngettext(singular, plural, n), english, {"n": n, **values})


# -- extraction (development: needs Babel and Jinja2) -----------------------------------
def extract_python(fileobj, keywords, comment_tags, options):
    """Babel extraction method for the hub's Python: `gettext(lang, msgid, ...)`, `ngettext(lang,
    singular, plural, n, ...)` and `_(lang, msgid, ...)` (any object's: `web.gettext(...)`) with
    the language argument dropped, and `N_(msgid)`."""
    from babel.messages.extract import extract_python as python

    for lineno, funcname, messages, comments in python(fileobj, (*PY_KEYWORDS, "N_"), comment_tags, options):
        if funcname == "N_":
            yield lineno, funcname, messages, comments
        elif isinstance(messages, (list, tuple)) and len(messages) >= 2:
            yield lineno, funcname, tuple(messages[1:]), comments


def _mapping(cfg: Path):
    from babel.messages import frontend

    parse = getattr(frontend, "parse_mapping_cfg", None) or frontend.parse_mapping
    with cfg.open(encoding="utf-8") as f:
        return parse(f)


def extract_catalog(root: Path = HUB, cfg: Path = BABEL_CFG):
    """Every msgid in `root` (as `pybabel extract -F hub/babel.cfg hub` finds them), as a catalog."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir

    method_map, options_map = _mapping(cfg)
    catalog = Catalog(project="nfc-kiosk", version="0.1.0", copyright_holder="nfc-kiosk developers",
                      msgid_bugs_address="https://nfc-kiosk.dev/issues", domain=DOMAIN, fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
            str(root), method_map, options_map, keywords=DEFAULT_KEYWORDS, comment_tags=("TRANSLATORS:",),
            strip_comment_tags=True):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def _dump(catalog, **options) -> bytes:
    from babel.messages.pofile import write_po

    out = io.BytesIO()
    write_po(out, catalog, no_location=True, width=100, **options)
    return out.getvalue()


def _write(path: Path, data: bytes) -> bool:
    """Write unless only the header's dates changed (no churn from an extract that found nothing new)."""
    def body(raw: bytes) -> list[bytes]:
        return [line for line in raw.splitlines() if not line.startswith((b'"POT-Creation-Date:', b'"PO-Revision-Date:'))]
    if path.is_file() and body(path.read_bytes()) == body(data):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def extract(locale_dir: Path = LOCALE_DIR, root: Path = HUB) -> dict[str, int]:
    """Refresh hub.pot and merge it into every language's .po (new msgids empty, gone ones dropped).
    Returns the count of untranslated msgids per language."""
    from babel.messages.catalog import Catalog

    template = extract_catalog(root)
    _write(locale_dir / f"{DOMAIN}.pot", _dump(template, omit_header=True))
    untranslated = {}
    for lang in LANGUAGES:
        po = po_path(lang, locale_dir)
        if po.is_file():
            catalog = read_catalog(po, lang)
        else:
            catalog = Catalog(locale=lang, domain=DOMAIN, project="nfc-kiosk", version="0.1.0",
                              copyright_holder="nfc-kiosk developers", msgid_bugs_address="https://nfc-kiosk.dev/issues",
                              last_translator="nfc-kiosk developers", language_team=f"{lang} <kiosk@nfc-kiosk.dev>",
                              header_comment=HEADER, fuzzy=False)
        catalog.update(template, no_fuzzy_matching=True, update_header_comment=False)
        catalog.obsolete.clear()
        catalog.fuzzy = False
        _write(po, _dump(catalog))
        untranslated[lang] = sum(1 for m in catalog if m.id and not _complete(m))
    _loaded.clear()
    return untranslated


# -- checks ----------------------------------------------------------------------------
def fields(text: str) -> set[str]:
    """The named {fields} of a str.format template (ValueError if its braces do not parse)."""
    out = set()
    for _literal, name, _spec, _conv in string.Formatter().parse(text):
        if name is not None:
            out.add(name.split(".")[0].split("[")[0])
    return out


def _complete(message) -> bool:
    strings = message.string if isinstance(message.string, (list, tuple)) else (message.string,)
    return not message.fuzzy and all(strings)


def problems(locale_dir: Path = LOCALE_DIR, template=None, languages=TRANSLATED) -> list[str]:
    """What `check` reports: one line per msgid that is wrong (its languages, where it is used)."""
    template = template if template is not None else extract_catalog()
    catalogs, out = {}, []
    for lang in languages:
        po = po_path(lang, locale_dir)
        if po.is_file():
            catalogs[lang] = read_catalog(po, lang)
        else:
            out.append(f"{lang}: no catalog at {po} (run `python -m hub.i18n extract`)")
    for wanted in template:
        if not wanted.id:
            continue
        key = wanted.id if isinstance(wanted.id, str) else wanted.id[0]
        where = ", ".join(sorted({Path(f).name for f, _line in wanted.locations}))
        try:
            expected = set().union(*(fields(i) for i in (wanted.id if isinstance(wanted.id, tuple) else (wanted.id,))))
        except ValueError:
            out.append(f"the msgid's braces do not parse (write {{{{ for a brace): {key!r} ({where})")
            continue
        missing, wrong = {"not extracted": [], "untranslated": [], "fuzzy": []}, []
        for lang, catalog in catalogs.items():
            message = catalog.get(wanted.id, wanted.context)
            if message is None:
                missing["not extracted"].append(lang)
                continue
            if not _complete(message):
                missing["fuzzy" if message.fuzzy else "untranslated"].append(lang)
                continue
            if isinstance(wanted.id, tuple) != isinstance(message.id, tuple):
                wanted_kind = "a plural" if isinstance(wanted.id, tuple) else "not a plural"
                wrong.append(f"{lang}: the msgid is now {wanted_kind} (run `python -m hub.i18n extract`)")
                continue
            strings = message.string if isinstance(message.string, (list, tuple)) else (message.string,)
            for n, text in enumerate(strings):
                form = f" (form {n})" if len(strings) > 1 else ""
                try:
                    got = fields(text)
                except ValueError:
                    wrong.append(f"{lang}: the translation's braces do not parse{form}")
                    continue
                if got != expected:
                    change = ", ".join([*(f"drops {{{f}}}" for f in sorted(expected - got)),
                                        *(f"adds {{{f}}}" for f in sorted(got - expected))])
                    wrong.append(f"{lang}: the translation {change}{form}")
        for what, langs in missing.items():
            if langs:
                hint = " (run `python -m hub.i18n extract`)" if what == "not extracted" else ""
                out.append(f"{what} in {', '.join(langs)}{hint}: {key!r} ({where})")
        out.extend(f"{line}: {key!r} ({where})" for line in wrong)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hub.i18n", description="The hub's message catalogs (Babel).")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("extract", help="refresh hub/locale/hub.pot and merge it into the .po files")
    sub.add_parser("check", help="exit 1 listing every msgid untranslated in vi, ru or th, or whose {fields} differ")
    args = p.parse_args(argv)
    if args.command == "extract":
        counts = extract()
        total = sum(1 for m in extract_catalog() if m.id)
        print(f"hub.i18n: {total} msgids in {LOCALE_DIR.relative_to(HUB.parent)}/{DOMAIN}.pot; untranslated: "
              + ", ".join(f"{lang} {counts[lang]}" for lang in TRANSLATED))
        return 0
    found = problems()
    for line in found:
        print(line)
    if found:
        print(f"hub.i18n check: {len(found)} msgid(s) to fix in hub/locale/<lang>/LC_MESSAGES/{DOMAIN}.po",
              file=sys.stderr)
        return 1
    print("hub.i18n check: every msgid is translated in " + ", ".join(TRANSLATED))
    return 0


if __name__ == "__main__":
    sys.exit(main())
