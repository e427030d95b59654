"""The hub's pages in en, vi, ru and th (hub/i18n.py): gettext catalogs with English msgids, as
the kiosk's. Every msgid of the hub's templates and Python is extracted, translated in vi, ru
and th with its {fields} kept; a new string that nobody translated fails here; the real hub
shows the pages in the language asked for."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from hub import demo, i18n
from hub.app import HubSettings
from hub.server import EmbeddedHub

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "hub" / "templates"


def test_every_msgid_is_translated_in_vi_ru_and_th_with_its_fields_kept():
    run = subprocess.run([sys.executable, "-m", "hub.i18n", "check"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr


def test_extraction_finds_the_templates_and_the_pythons_strings():
    catalog = i18n.extract_catalog()
    ids = {m.id for m in catalog if m.id}
    assert {"Kiosk fleet", "Sign in to your kiosk fleet", "signed in with {key}", "As of {time}",  # templates
            ("{n} kiosk in the fleet", "{n} kiosks in the fleet"),                                 # ngettext there
            "There is no such page.", "online", "starting",                                         # N_ in web.py
            "Too many sign-in attempts from this address. Try again in {minutes} min.",             # web.gettext
            ("{n} day ago", "{n} days ago")} <= ids                                                 # web.ngettext
    assert not {m for m in ids if isinstance(m, str) and m.startswith(("http", "/"))}  # no URLs or paths taken
    # every literal _("...") of every template is in the catalog (the extractor misses none)
    literal = re.compile(r"""\b_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
    found = set()
    for template in TEMPLATES.glob("**/*.html"):
        for double, single in literal.findall(template.read_text("utf-8")):
            found.add(double or single)
    assert found and found <= ids, sorted(found - ids)
    # and every msgid of the brand's pages is in the .pot written by `extract`
    pot = i18n.read_catalog(i18n.LOCALE_DIR / "hub.pot", "en")
    assert {m.id for m in pot if m.id} == ids, "run `python -m hub.i18n extract`"


def test_a_string_nobody_translated_or_a_dropped_field_fails_the_check(tmp_path):
    """A new template string and a new Python string are extracted and reported until translated;
    a translation that drops or adds a {field} is reported too."""
    root = tmp_path / "hub"
    (root / "templates").mkdir(parents=True)
    shutil.copy(i18n.BABEL_CFG, root / "babel.cfg")
    (root / "templates" / "new.html").write_text(
        '{% extends "base.html" %}{% block main %}<p>{{ _("Brand new words") }}</p>'
        '<p>{{ _("Hello {name}", name=who) }}</p><p>{{ ngettext("{n} apple", "{n} apples", count) }}</p>'
        '{% endblock %}', "utf-8")
    (root / "new.py").write_text(
        'from hub.i18n import N_\n'
        'LABEL = N_("Marked for later")\n'
        'def show(web, lang, x):\n'
        '    return web.gettext(lang, "From Python {x}", x=x) + web.ngettext(lang, "{n} pear", "{n} pears", x)\n'
        'def ignored(lang, name):\n'
        '    return translation.gettext(name), "not a msgid"\n', "utf-8")
    template = i18n.extract_catalog(root, root / "babel.cfg")
    assert {m.id for m in template if m.id} == {"Brand new words", "Hello {name}", ("{n} apple", "{n} apples"),
                                                "Marked for later", "From Python {x}", ("{n} pear", "{n} pears")}
    locale = root / "locale"
    counts = i18n.extract(locale_dir=locale, root=root)
    assert counts == {"en": 6, "vi": 6, "ru": 6, "th": 6}
    assert (locale / "hub.pot").is_file() and i18n.po_path("th", locale).is_file()
    report = i18n.problems(locale, template)
    assert "untranslated in vi, ru, th: 'Brand new words' (new.html)" in report
    assert "untranslated in vi, ru, th: 'From Python {x}' (new.py)" in report
    assert len(report) == 6

    ru = i18n.read_catalog(i18n.po_path("ru", locale), "ru")
    ru["Hello {name}"].string = "Привет, {nom}"
    ru["{n} apple"].string = ("{n} яблоко", "{n} яблока", "яблок")  # form 2 drops {n}
    ru["Brand new words"].string = "Новые слова {"
    from babel.messages.pofile import write_po
    with i18n.po_path("ru", locale).open("wb") as f:
        write_po(f, ru)
    report = i18n.problems(locale, template, languages=("ru",))
    assert "ru: the translation drops {name}, adds {nom}: 'Hello {name}' (new.html)" in report
    assert "ru: the translation drops {n} (form 2): '{n} apple' (new.html)" in report
    assert "ru: the translation's braces do not parse: 'Brand new words' (new.html)" in report
    # extract again: translations stay, nothing is lost
    i18n.extract(locale_dir=locale, root=root)
    assert i18n.read_catalog(i18n.po_path("ru", locale), "ru")["Hello {name}"].string == "Привет, {nom}"
    i18n._loaded.clear()


def test_gettext_formats_after_translating_and_falls_back_to_english(monkeypatch):
    assert i18n.gettext("en", "As of {time}", time="12:00") == "As of 12:00"
    assert i18n.gettext("th", "Sign in") == "เข้าสู่ระบบ"
    assert i18n.gettext("vi", "As of {time}", time="12:00") == "Cập nhật lúc 12:00"
    assert i18n.gettext("xx", "Sign in") == "Sign in"  # an unknown language: English
    assert i18n.gettext("vi", "A msgid nobody translated {x}", x=1) == "A msgid nobody translated 1"
    assert i18n.gettext("en", "Literal {braces} without values") == "Literal {braces} without values"
    forms = {n: i18n.ngettext("ru", "{n} day ago", "{n} days ago", n) for n in (1, 2, 5, 11, 21, 22)}
    assert forms == {1: "1 день назад", 2: "2 дня назад", 5: "5 дней назад", 11: "11 дней назад",
                     21: "21 день назад", 22: "22 дня назад"}
    assert i18n.ngettext("en", "{n} day ago", "{n} days ago", 1) == "1 day ago"
    assert i18n.ngettext("th", "{n} day ago", "{n} days ago", 3) == "3 วันที่แล้ว"

    class Broken:  # a translation whose fields do not format: the English text, formatted
        def gettext(self, msgid):
            return "{nope} {"

        def ngettext(self, singular, plural, n):
            return "{n.real.bad}"
    monkeypatch.setitem(i18n._loaded, "vi", Broken())
    assert i18n.gettext("vi", "As of {time}", time="12:00") == "As of 12:00"
    assert i18n.ngettext("vi", "{n} day ago", "{n} days ago", 4) == "4 days ago"


@pytest.fixture
def hub(hub_db, card_key):
    with EmbeddedHub(HubSettings(db_path=hub_db, demo=True)) as running:
        running.base = f"http://localhost:{running.port}"
        yield running


@pytest.mark.parametrize("db_kind", ["sqlite"])  # the texts do not depend on the database
def test_the_real_hub_shows_its_pages_in_thai_vietnamese_and_russian(hub):
    for code in ("DEMO", "DEMO-LOTUS-HN"):
        r = requests.post(hub.url + "/v1/devices/enroll", json={"code": code, "name": f"Kiosk {code}"}, timeout=10)
        assert r.status_code == 200, r.text
    page = requests.get(hub.base + "/brand/sign-in?lang=th", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Language"] == "th"
    assert '<html lang="th">' in page.text and "เข้าสู่ระบบกลุ่มตู้คีออสก์ของคุณ" in page.text
    assert "คีย์ของแบรนด์" in page.text and "Brand key" not in page.text
    for name in ("English", "Tiếng Việt", "Русский", "ไทย"):  # the switch: each language in its own name
        assert f">{name}</a>" in page.text

    s = requests.Session()
    r = s.post(hub.base + "/brand/sign-in", data={"key": demo.brand_key("lotus")}, allow_redirects=False, timeout=10)
    assert r.status_code == 303
    ru = s.get(hub.base + "/brand/devices?lang=ru", timeout=10).text
    assert "<h1>Киоски</h1>" in ru and "2 киоска в парке" in ru and "не в сети: 2" in ru and "Был в сети" in ru
    assert "никогда" in ru and "Kiosks" not in ru
    vi = s.get(hub.base + "/brand/devices?lang=vi", timeout=10).text  # and the choice is remembered
    assert "2 kiosk trong hệ thống" in vi and "Cửa hàng" in vi and "ngoại tuyến" in vi
    again = s.get(hub.base + "/brand/devices", timeout=10)
    assert again.headers["Content-Language"] == "vi"
    refused = s.post(hub.base + "/brand/sign-out?lang=ru", data="{}", headers={"Content-Type": "application/json"},
                     timeout=10)
    assert refused.status_code == 415 and "Не удалось прочитать форму" in refused.text
    missing = s.get(hub.base + "/brand/devices/dev-nope/revoke?lang=th", timeout=10)
    assert missing.status_code == 404 and "ไม่มีตู้นี้ในกลุ่มของคุณ" in missing.text
    en = s.get(hub.base + "/brand/devices?lang=en", timeout=10).text
    assert "2 kiosks in the fleet" in en and "2 offline" in en
