"""Headless Chromium for the report and comparison pages (selenium, chromium, chromedriver).

The ``driver`` fixture (tests/conftest.py) skips the tests that use it where any of them is
missing.
"""

import shutil

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
#: [src, loaded] of every image of the page.
IMAGES = "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"


def chromium():
    """A headless Chromium WebDriver that keeps the browser console's log."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def console_errors(driver) -> list:
    """The page's console errors."""
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
