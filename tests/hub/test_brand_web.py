"""The brand's fleet page (hub/web.py) in a real headless Chromium against the real hub on a
loopback port, on SQLite and PostgreSQL: sign in with a brand key, see this brand's kiosks
(and no other brand's), remove one (its next call is refused), and every way in that must not
work: no CSRF token, a wrong one, a form from another site, a wrong key, a signed-out or
revoked-key session, markup in names, and the page in Thai."""
from __future__ import annotations

import http.server
import re
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import browser, chromedriver, make_browser  # noqa: E402,F401  (fixtures)

from hub import brands, demo  # noqa: E402
from hub.app import HubSettings  # noqa: E402
from hub.server import EmbeddedHub  # noqa: E402
from kiosk import api  # noqa: E402

LOTUS, SIAM = demo.brand_key("lotus"), demo.brand_key("siam")


@pytest.fixture
def hub(hub_db, card_key):
    with EmbeddedHub(HubSettings(db_path=hub_db, demo=True)) as running:
        running.base = f"http://localhost:{running.port}"
        yield running


def enroll(hub, code: str, name: str) -> tuple[str, str]:
    r = requests.post(hub.url + "/v1/devices/enroll", json={"code": code, "name": name}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["device_id"], r.json()["device_token"]


def heartbeat(hub, device_id: str, token: str, **payload) -> requests.Response:
    return requests.post(f"{hub.url}/v1/devices/{device_id}/heartbeat", json=payload, timeout=10,
                         headers={"Authorization": "Bearer " + token})


def sign_in(b, hub, key: str = LOTUS) -> None:
    b.open(hub.base + "/brand/sign-in")
    assert b.find("#key").get_attribute("type") == "password"
    b.fill("#key", key)
    b.submit("#sign-in")


def fleet(hub) -> dict:
    """Two Lotus kiosks (one reporting in, with full health), one Siam kiosk."""
    till, till_token = enroll(hub, "DEMO", "Till entrance")
    back, back_token = enroll(hub, "DEMO-LOTUS-HN", "Back door")
    siam, siam_token = enroll(hub, "DEMO-SIAM-BKK", "Siam Square kiosk")
    now = time.time()
    assert heartbeat(hub, till, till_token, version="0.1.0", reader_state="connected", outbox_depth=3, parked=1,
                     last_sync=now - 95, sent_at=now + 2.5, free_disk_mb=5120).status_code == 204
    assert heartbeat(hub, siam, siam_token, version="0.1.0", reader_state="connected").status_code == 204
    return {"till": (till, till_token), "back": (back, back_token), "siam": (siam, siam_token)}


def session_of(hub, key: str = LOTUS) -> tuple[requests.Session, str]:
    """A signed-in HTTP session (as a browser would hold it) and its CSRF token."""
    s = requests.Session()
    r = s.post(hub.base + "/brand/sign-in", data={"key": key}, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["location"] == "/brand/devices"
    page = s.get(hub.base + "/brand/devices", timeout=10).text
    return s, re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def test_sign_in_shows_this_brands_kiosks_and_never_the_key(hub, browser):
    kiosks = fleet(hub)
    browser.open(hub.base + "/brand/devices")  # signed out: sent to sign in
    assert browser.url.endswith("/brand/sign-in")
    browser.shot("sign-in")
    sign_in(browser, hub)
    assert browser.url.endswith("/brand/devices")
    rows = {r.get_attribute("data-device"): r for r in browser.find_all("#devices tbody tr")}
    till, back, siam = kiosks["till"][0], kiosks["back"][0], kiosks["siam"][0]
    assert set(rows) == {till, back}  # not Siam's
    assert "Siam Square kiosk" not in browser.source
    assert LOTUS not in browser.source and "bk_" not in browser.source
    row = rows[till].text
    assert "Till entrance" in row and "Saigon Centre" in row and "online" in row and "0.1.0" in row
    assert "connected" in row and "5.0 GB" in row and "+2.5 s" in row and "1 min ago" in row
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", row)
    assert "offline" in rows[back].text and "never" in rows[back].text
    assert "Lotus & Linen" in browser.text("header")
    cookie = browser.cookies()["hub_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    browser.shot("devices")


def test_removing_a_kiosk_takes_a_confirm_step_and_its_next_call_is_refused(hub, browser):
    kiosks = fleet(hub)
    till, token = kiosks["till"]
    sign_in(browser, hub)
    browser.submit(f"#row-{till} a.revoke")
    assert browser.url.endswith(f"/brand/devices/{till}/revoke")
    assert browser.text("#confirm-name") == "Till entrance"
    browser.shot("confirm-remove")
    assert heartbeat(hub, till, token).status_code == 204  # nothing happened yet
    browser.submit("#cancel")
    assert heartbeat(hub, till, token).status_code == 204
    browser.submit(f"#row-{till} a.revoke")
    browser.submit("#confirm-remove")
    assert "Till entrance was removed from the fleet" in browser.text("#done")
    assert "removed" in browser.text(f"#row-{till}")
    assert not browser.find_all(f"#row-{till} a.revoke")
    refused = heartbeat(hub, till, token)
    assert refused.status_code == 401 and refused.json()["type"] == api.P_DEVICE_REVOKED
    assert heartbeat(hub, *kiosks["back"]).status_code == 204  # the others work on
    browser.shot("after-remove")


def test_a_revoke_without_the_right_csrf_token_or_from_another_origin_is_refused(hub):
    kiosks = fleet(hub)
    till, token = kiosks["till"]
    s, csrf = session_of(hub)
    url = f"{hub.base}/brand/devices/{till}/revoke"
    for data, headers in (({"confirm": "yes"}, {}), ({"confirm": "yes", "csrf": ""}, {}),
                          ({"confirm": "yes", "csrf": csrf[:-2] + "xx"}, {}),
                          ({"confirm": "yes", "csrf": csrf}, {"Origin": "http://evil.example"}),
                          ({"confirm": "yes", "csrf": csrf}, {"Referer": "http://evil.example/form"}),
                          ({"confirm": "yes", "csrf": csrf}, {"Sec-Fetch-Site": "cross-site", "Origin": "null"}),
                          ({"confirm": "yes", "csrf": csrf}, {"Sec-Fetch-Site": "same-site"})):
        r = s.post(url, data=data, headers=headers, allow_redirects=False, timeout=10)
        assert r.status_code == 403, (data, headers)
        assert r.headers["content-type"].startswith("text/html") and "Traceback" not in r.text
        assert heartbeat(hub, till, token).status_code == 204
    other, other_csrf = session_of(hub)  # another session's token is not this one's
    r = s.post(url, data={"confirm": "yes", "csrf": other_csrf}, allow_redirects=False, timeout=10)
    assert r.status_code == 403 and heartbeat(hub, till, token).status_code == 204
    r = s.post(f"{hub.base}/brand/devices/{kiosks['siam'][0]}/revoke", data={"confirm": "yes", "csrf": csrf},
               allow_redirects=False, timeout=10)  # another brand's kiosk: as if unknown
    assert r.status_code == 404 and heartbeat(hub, *kiosks["siam"]).status_code == 204
    r = s.post(url, data={"confirm": "yes", "csrf": csrf}, headers={"Origin": hub.base}, allow_redirects=False,
               timeout=10)
    assert r.status_code == 303 and heartbeat(hub, till, token).status_code == 401


def test_a_form_on_another_site_cannot_remove_a_kiosk(hub, browser):
    """A real cross-site form post in the browser: the SameSite=Strict cookie is not sent."""
    kiosks = fleet(hub)
    till, token = kiosks["till"]
    sign_in(browser, hub)
    form = (f'<!doctype html><form method="post" action="{hub.base}/brand/devices/{till}/revoke">'
            '<input name="csrf" value="guess"><input name="confirm" value="yes">'
            '<button id="go">win a prize</button></form>').encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(form)))
            self.end_headers()
            self.wfile.write(form)

        def log_message(self, *a):
            pass
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        browser.open(f"http://127.0.0.1:{evil.server_address[1]}/")
        browser.submit("#go")
        browser.wait_url("/brand/")
    finally:
        evil.shutdown()
        evil.server_close()
    assert heartbeat(hub, till, token).status_code == 204
    browser.open(hub.base + "/brand/devices")  # still signed in here, nothing removed
    assert "online" in browser.text(f"#row-{till}")


def test_a_wrong_key_shows_the_sign_in_page_again_with_a_message_and_is_rate_limited(hub, browser):
    sign_in(browser, hub, "bk_this-is-not-a-key")
    assert browser.url.endswith("/brand/sign-in")
    assert "That key is not valid" in browser.text("#error")
    assert browser.find("#key").get_attribute("value") == ""  # the typed key is not echoed back
    browser.shot("wrong-key")
    sign_in(browser, hub, "not even the shape of a key")
    assert "That key is not valid" in browser.text("#error")
    statuses = [requests.post(hub.base + "/brand/sign-in", data={"key": "bk_guess%d" % i}, timeout=10).status_code
                for i in range(10)]
    assert statuses[:8] == [401] * 8 and statuses[-1] == 429
    r = requests.post(hub.base + "/brand/sign-in", data={"key": LOTUS}, allow_redirects=False, timeout=10)
    assert r.status_code == 429 and "Too many sign-in attempts" in r.text and int(r.headers["Retry-After"]) > 0
    # the limit is kept in the database: every hub process on this database shares it
    assert hub.store.one("SELECT count FROM rate_limits WHERE bucket LIKE 'web:brand-sign-in:%'")[0] >= 11


def test_sign_out_ends_the_session(hub, browser):
    fleet(hub)
    sign_in(browser, hub)
    old = browser.cookies()["hub_session"]["value"]
    browser.submit("#sign-out")
    assert browser.url.endswith("/brand/sign-in?m=out") and "You are signed out" in browser.text("#notice")
    assert "hub_session" not in browser.cookies()
    browser.open(hub.base + "/brand/devices")
    assert browser.url.endswith("/brand/sign-in")
    r = requests.get(hub.base + "/brand/devices", cookies={"hub_session": old}, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["location"].startswith("/brand/sign-in")  # the old cookie is dead too
    assert hub.store.one("SELECT count(*) FROM web_sessions")[0] == 0


def test_a_revoked_key_ends_its_sessions_at_once(hub, browser):
    fleet(hub)
    key_id, key = brands.create_key(hub.store, "lotus", "technician")
    sign_in(browser, hub, key)
    assert browser.url.endswith("/brand/devices")
    r = requests.delete(f"{hub.url}/v1/brand/keys/{key_id}", headers={"Authorization": "Bearer " + LOTUS}, timeout=10)
    assert r.status_code == 204
    browser.open(hub.base + "/brand/devices")
    assert browser.url.endswith("/brand/sign-in?m=ended") and "Sign in again" in browser.text("#notice")
    # the key is checked on every request, whoever revoked it and however
    key_id, key = brands.create_key(hub.store, "lotus", "second")
    s, csrf = session_of(hub, key)
    hub.store.conn.execute("UPDATE brand_keys SET revoked_at=? WHERE id=?", (time.time(), key_id))
    r = s.get(hub.base + "/brand/devices", allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["location"] == "/brand/sign-in?m=ended"


def test_markup_in_names_is_shown_as_text(hub, browser):
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    device_id, _ = enroll(hub, "DEMO", evil)
    r = requests.post(hub.url + "/v1/brand/stores:batch", headers={"Authorization": "Bearer " + LOTUS}, timeout=10,
                      json={"stores": [{"store_code": "hcm", "name": "Saigon <i>Centre</i> </td>", "city": "HCMC",
                                        "currency": "VND"}]})
    assert r.status_code == 200 and r.json()["counts"]["rejected"] == 0, r.text
    sign_in(browser, hub)
    assert browser.text(f"#row-{device_id} .name") == evil
    assert "Saigon <i>Centre</i> </td>" in browser.text(f"#row-{device_id}")
    assert not browser.find_all("main script, main img, main i")
    assert not browser.find_all("script")
    from selenium.common.exceptions import NoAlertPresentException
    with pytest.raises(NoAlertPresentException):
        browser.driver.switch_to.alert.text
    browser.submit(f"#row-{device_id} a.revoke")
    assert browser.text("#confirm-name") == evil
    browser.shot("escaped")


def test_the_page_in_thai_from_accept_language_and_a_language_switch(hub, make_browser):
    fleet(hub)
    thai = make_browser(accept_language="th")
    thai.open(hub.base + "/brand/sign-in")
    assert thai.find("html").get_attribute("lang") == "th"
    assert thai.text("h1") == "เข้าสู่ระบบกลุ่มตู้คีออสก์ของคุณ"
    thai.shot("sign-in-th")
    sign_in(thai, hub)
    assert thai.text("h1") == "ตู้คีออสก์"
    head = thai.text("#devices thead")
    assert "สาขา" in head and "ดิสก์ว่าง" in head and "นาฬิกาคลาดเคลื่อน" in head
    assert "ออนไลน์" in thai.text("#devices tbody") and "ถอดออก…" in thai.text("#devices tbody")
    assert "Online" not in thai.text("main") and "Kiosk" not in thai.text("main")
    thai.shot("devices-th")
    thai.open(hub.base + "/brand/devices?lang=vi")  # the switch, remembered
    assert thai.text("h1") == "Kiosk" and "Cửa hàng" in thai.text("#devices thead")
    thai.open(hub.base + "/brand/devices")
    assert thai.find("html").get_attribute("lang") == "vi"
    for lang in ("en", "ru"):
        thai.open(hub.base + f"/brand/devices?lang={lang}")
        thai.shot(f"devices-{lang}")
    assert thai.text("h1") == "Киоски"


def test_every_page_carries_the_security_headers_and_errors_are_plain_pages(hub):
    fleet(hub)
    s, csrf = session_of(hub)
    pages = [s.get(hub.base + p, allow_redirects=False, timeout=10) for p in
             ("/brand/sign-in", "/brand/devices", "/brand/devices/dev-nope/revoke", "/brand/nothing-here")]
    pages.append(s.post(hub.base + "/brand/devices/x/revoke", data="{}", headers={"Content-Type": "application/json"},
                        timeout=10))
    pages.append(s.post(hub.base + "/brand/devices/x/revoke", data={"csrf": csrf, "pad": "x" * 20000}, timeout=10))
    pages.append(s.get(hub.base + "/brand/devices", allow_redirects=False, timeout=10, cookies={"hub_session": "x" * 43}))
    assert [p.status_code for p in pages] == [303, 200, 404, 404, 415, 413, 303]  # signed in: sign-in goes on
    for page in pages:
        h = page.headers
        assert "default-src 'self'" in h["Content-Security-Policy"] and "frame-ancestors 'none'" in h["Content-Security-Policy"]
        assert "form-action 'self'" in h["Content-Security-Policy"] and "unsafe-inline" not in h["Content-Security-Policy"]
        assert h["X-Content-Type-Options"] == "nosniff" and h["Referrer-Policy"] == "no-referrer"
        assert h["Cache-Control"] == "no-store"
        if page.status_code != 303:
            assert h["Content-Type"].startswith("text/html") and "Traceback" not in page.text
    assert "There is no such kiosk in your fleet" in pages[2].text
    assert requests.get(hub.base + "/brand/devices", allow_redirects=False, cookies={"hub_session": "x" * 43},
                        timeout=10).headers["location"] == "/brand/sign-in?m=ended"


def test_over_https_the_cookie_is_host_prefixed_and_secure(hub):
    r = requests.post(hub.base + "/brand/sign-in", data={"key": LOTUS}, allow_redirects=False, timeout=10,
                      headers={"X-Forwarded-Proto": "https"})  # as behind a TLS proxy on loopback
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("__Host-hub_session=") and "Secure" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie and "Path=/" in cookie and "Max-Age=28800" in cookie and "Domain" not in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    secure = requests.get(hub.base + "/brand/devices", cookies={"__Host-hub_session": value}, allow_redirects=False,
                          headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert secure.status_code == 200
    # only the id's hash is stored
    assert hub.store.one("SELECT count(*) FROM web_sessions WHERE id_hash=?", (value,))[0] == 0
