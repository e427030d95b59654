"""Headless Chromium for the hub's web pages (the fleet page, the shopper's page), through
Selenium and Debian's own chromium + chromium-driver (nothing is downloaded; FIELD-NOTES.md).

    import sys; sys.path.insert(0, str(Path(__file__).parent))
    from browser import browser, make_browser, chromedriver  # noqa: F401  (pytest fixtures)

    def test_page(browser, hub):
        browser.open(hub.url.replace("127.0.0.1", "localhost") + "/brand/sign-in")
        browser.shot("sign-in")                        # <tmp_path>/screenshots/sign-in.png

`browser` is a fresh Chromium (a new profile: no cookies) per test, English; `make_browser(
accept_language="th")` makes more (a second user, another language). Screenshots are saved
under the test's tmp_path (and also under $KIOSK_SCREENSHOTS/<test name>/ when that is set),
full page. `browser.driver` is the Selenium WebDriver (for add_virtual_authenticator and the
rest). Open pages as http://localhost:PORT: a WebAuthn relying party id must be a domain.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW = (1440, 900)  # a laptop


class Browser:
    def __init__(self, driver, shots: Path, copy_to: Path | None = None) -> None:
        self.driver, self.shots, self.copy_to = driver, shots, copy_to

    def open(self, url: str) -> "Browser":
        self.driver.get(url)
        return self

    @property
    def url(self) -> str:
        return self.driver.current_url

    @property
    def source(self) -> str:
        return self.driver.page_source

    def text(self, css: str = "body") -> str:
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def find(self, css: str):
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list:
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def fill(self, css: str, value: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(value)

    def click(self, css: str) -> None:
        self.find(css).click()

    def submit(self, css: str, timeout: float = 10.0) -> None:
        """Click a form's button and wait until the next page replaced this one."""
        button = self.find(css)
        button.click()
        self.wait(_gone(button), timeout, f"the page after {css}")

    def wait(self, condition, timeout: float = 10.0, what: str = "the page"):
        """Wait until condition(driver) is true (a form post's navigation, say)."""
        from selenium.webdriver.support.ui import WebDriverWait
        return WebDriverWait(self.driver, timeout).until(condition, f"waiting for {what}")

    def wait_url(self, part: str, timeout: float = 10.0) -> None:
        self.wait(lambda d: part in d.current_url, timeout, f"a URL with {part!r} (at {self.driver.current_url})")

    def cookies(self) -> dict[str, dict]:
        return {c["name"]: c for c in self.driver.get_cookies()}

    def shot(self, name: str) -> Path:
        """A screenshot of the whole page (the window grown to its height), as <name>.png."""
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        width, height = WINDOW
        full = self.driver.execute_script("return Math.max(document.documentElement.scrollHeight, "
                                          "document.body ? document.body.scrollHeight : 0)") or height
        self.driver.set_window_size(width, max(height, min(int(full) + 20, 6000)))
        try:
            self.driver.save_screenshot(str(path))
        finally:
            self.driver.set_window_size(width, height)
        if self.copy_to is not None:
            self.copy_to.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, self.copy_to / path.name)
        return path

    def quit(self) -> None:
        self.driver.quit()


def options(accept_language: str = "en"):
    from selenium.webdriver.chrome.options import Options
    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                 "--disable-sync", "--disable-translate", "--password-store=basic", "--hide-scrollbars",
                 f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--lang={accept_language}"):
        opts.add_argument(flag)
    opts.add_experimental_option("prefs", {"intl.accept_languages": accept_language,
                                           "credentials_enable_service": False,
                                           "profile.password_manager_enabled": False})
    return opts


@pytest.fixture(scope="session")
def chromedriver():
    """One chromedriver for the run; each test's browser is its own Chromium."""
    from selenium.webdriver.chrome.service import Service
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Debian's chromium and chromium-driver are needed (apt-get install chromium chromium-driver)")
    service = Service(CHROMEDRIVER)
    service.start()
    yield service
    service.stop()


@pytest.fixture
def make_browser(chromedriver, tmp_path, request):
    """make_browser(accept_language="th") -> Browser; every one is closed after the test."""
    from selenium import webdriver
    made: list[Browser] = []
    env = os.environ.get("KIOSK_SCREENSHOTS")
    copy_to = Path(env) / re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name) if env else None

    def make(accept_language: str = "en") -> Browser:
        driver = webdriver.Chrome(service=chromedriver, options=options(accept_language))
        driver.set_page_load_timeout(20)
        made.append(Browser(driver, tmp_path / "screenshots", copy_to))
        return made[-1]
    yield make
    for b in made:
        try:
            b.quit()
        except Exception:  # noqa: BLE001 - a browser that died already
            pass


@pytest.fixture
def browser(make_browser) -> Browser:
    return make_browser()


def _gone(element):
    """Until `element`'s page is replaced. Chromium sometimes answers a question about an
    element of a page being torn down with "unhandled inspector error" (its execution context
    is gone) instead of a stale-element error: that means the same thing here."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    def check(_driver) -> bool:
        try:
            element.is_enabled()
            return False
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "inspector error" in str(exc) or "execution context" in str(exc):
                return True
            raise
    return check


def with_passkeys(b: Browser) -> Browser:
    """A WebAuthn virtual authenticator in this browser: a platform passkey with user
    verification, as a phone's screen lock gives (FIELD-NOTES.md)."""
    from selenium.webdriver.common.virtual_authenticator import VirtualAuthenticatorOptions
    b.driver.add_virtual_authenticator(VirtualAuthenticatorOptions(
        protocol="ctap2", transport="internal", has_resident_key=True, has_user_verification=True,
        is_user_verified=True))
    return b


def claim(b: Browser, base: str, token: str) -> None:
    """Set a card up from its URL (`base`/s/<token>) with this browser's passkey: signed in."""
    b.open(f"{base}/s/{token}")
    assert b.find("#card-unclaimed")
    b.click("#claim")
    b.wait_url("/me?m=claimed", 20)
    assert b.text("#notice")  # "Your card is set up", in the shopper's language
