"""`mlclip serve` in a real browser: Debian's chromium, driven by selenium through
/usr/bin/chromedriver, loads the page from a `mlclip serve` subprocess on 127.0.0.1, types a
German query, and sees the language detected as `de` and the captioned image first (with its
thumbnail loaded). MLCLIP_SERVE_SCREENSHOT=PATH saves a screenshot of the result there
(docs/images/serve.png is one). Skips, saying why, without chromium, chromedriver or selenium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,860")
WAIT_S = 60  # WebDriverWait's limit on one page event (it polls; the test never sleeps)


def _skip_reason() -> str | None:
    if not Path(CHROMIUM).is_file():
        return "no chromium (apt-get install chromium chromium-driver)"
    if not Path(CHROMEDRIVER).is_file():
        return "no chromedriver (apt-get install chromium-driver)"
    for module, package in (("selenium", "selenium"), ("fastapi", "mlclip[serve]"), ("uvicorn", "mlclip[serve]")):
        try:
            __import__(module)
        except ImportError:
            return f"no {module} (pip install {package})"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


@pytest.fixture
def server(german_gallery, tmp_path):
    """`mlclip serve` on a free loopback port over an index of the gallery; its URL once it listens."""
    from mlclip_cli.api import Index, load

    index = Index.build(load(german_gallery["extension"]), german_gallery["collection"])
    folder = index.save(tmp_path / "index")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlclip_cli", "--workspace", str(tmp_path / "ws"), "serve", "--index", str(folder),
         "--model", str(german_gallery["extension"]), "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "500"})
    try:
        line = process.stdout.readline()  # printed once the socket listens: no polling, no sleep
        if " at http://127.0.0.1:" not in line:
            process.kill()
            raise AssertionError(f"mlclip serve did not start: {line!r} {process.stderr.read()[-2000:]}")
        yield line.rsplit(" at ", 1)[1].split()[0]
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_a_german_query_in_the_browser_finds_its_image_with_language_de(server, browser, german_gallery):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    path, caption = german_gallery["captions"]["de"][0]
    wait = WebDriverWait(browser, WAIT_S)
    browser.get(server)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready")
    options = [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#lang option")]
    assert options == ["auto", "en", "de"]  # auto plus the model's languages, overridable
    box = browser.find_element(By.ID, "q")
    box.send_keys(caption)
    box.send_keys(Keys.ENTER)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") in ("done", "error"))
    assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None, \
        browser.find_element(By.ID, "error").text
    assert browser.find_element(By.ID, "language").text == "de"
    assert browser.find_element(By.ID, "latency").text.endswith(" ms")
    hits = browser.find_elements(By.CSS_SELECTOR, "#results figure.hit")
    assert len(hits) == 12 and hits[0].get_attribute("data-path") == path
    first = hits[0].find_element(By.TAG_NAME, "img")
    wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", first))
    wait.until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"))
    shot = os.environ.get("MLCLIP_SERVE_SCREENSHOT")
    if shot:
        Path(shot).parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(shot)

    # the language can be overridden: the same words through the English tower are another query
    browser.find_element(By.CSS_SELECTOR, "#lang option[value='en']").click()
    browser.find_element(By.CSS_SELECTOR, "#search button[type=submit]").click()
    wait.until(lambda d: d.find_element(By.ID, "language").text == "en")
