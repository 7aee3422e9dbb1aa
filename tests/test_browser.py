"""The report (and the docs site's index) in a real browser: headless Chromium via Selenium.

Skipped when Chromium, its driver or Selenium is missing; ``.ci/run`` installs Debian's
``chromium`` and ``chromium-driver`` so that CI runs it. Checks, on the page as a browser lays it
out: every image has loaded (a decoded bitmap), nothing is wider than the window (no horizontal
scroll at a laptop's and a phone's width), every in-page link of the table of contents points at
an element that exists, and the console logged no error.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                       reason="no headless Chromium and chromedriver "
                              "(apt-get install chromium chromium-driver)"),
]

ROOT = Path(__file__).resolve().parents[1]
#: A small report: the default workload, a short simulation, two claims.
REPORT_ARGS = ["report", "--slots", "4000", "--replications", "2", "--claims", "def:memory-time",
               "--quiet"]
#: Window widths: a laptop and a phone (CSS pixels).
WIDTHS = (1280, 420)


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    from flowstab.cli import main

    out = tmp_path_factory.mktemp("report")
    assert main([*REPORT_ARGS, "--out", str(out)]) == 0
    return out / "report.html"


def _check_page(driver, path: Path) -> None:
    for width in WIDTHS:
        driver.set_window_size(width, 900)
        driver.get(path.as_uri())
        driver.execute_script("return document.readyState")  # waits for the load event
        broken = driver.execute_script(
            "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
            ".map(i => i.getAttribute('alt') || i.src.slice(0, 60))")
        assert broken == [], f"images that did not load at {width}px: {broken}"
        n_images = driver.execute_script("return document.images.length")
        over = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert over <= 1, f"the page is {over}px wider than a {width}px window (horizontal scroll)"
        dangling = driver.execute_script(
            "return Array.from(document.querySelectorAll('a[href^=\"#\"]'))"
            ".map(a => decodeURIComponent(a.getAttribute('href').slice(1)))"
            ".filter(id => id && !document.getElementById(id))")
        assert dangling == [], f"in-page links to nothing: {dangling}"
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], f"console errors at {width}px: {errors}"
    assert n_images >= 1 or path.name != "report.html"  # the report has figures


def test_report_in_a_browser(browser, report_html):
    _check_page(browser, report_html)


def test_docs_index_in_a_browser(browser):
    index = ROOT / "docs" / "_build" / "html" / "index.html"
    if not index.is_file():
        pytest.skip("the docs site is not built (make docs)")
    _check_page(browser, index)
