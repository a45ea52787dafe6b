"""A real headless Chromium for driving the demo apps (Selenium + Debian's chromedriver).

    with chromium() as browser:
        browser.get("http://127.0.0.1:8501")
        wait_for_text(browser, "Prediction")
        browser.save_screenshot("docs/img/streamlit.png")

Debian's ``chromium`` and ``chromium-driver`` packages come as a matched pair, so Selenium is
pointed at both and its driver manager (which would download one) never runs. Headless, no
GPU, no first-run network calls; ``--no-sandbox`` only when running as root (CI and
containers), where Chromium's sandbox cannot start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import Any

from course_pkg.processes import poll_until

INSTALL = "apt-get install chromium chromium-driver (Debian's matched browser and driver)"


def find_chromium() -> tuple[str, str] | None:
    """(browser, driver) paths, or None when either is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 1000) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_chromium()
    if found is None:
        raise RuntimeError(f"no chromium/chromedriver on PATH: {INSTALL}")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download drivers
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for argument in (
        "--headless=new",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")
    driver = webdriver.Chrome(options=options, service=Service(found[1]))
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(condition: Any, what: str, timeout: float = 30.0) -> Any:
    """Poll ``condition()`` until it returns something truthy (pages render late)."""
    try:
        # any exception: the page may be mid-render (a stale element, one not there yet)
        return poll_until(
            condition, timeout=timeout, what=what, interval=0.2, retry_on=(Exception,)
        )
    except TimeoutError:
        raise TimeoutError(f"{what} did not happen in {timeout:g} s") from None


def page_text(browser: Any) -> str:
    return str(browser.find_element("tag name", "body").text)


def wait_for_text(browser: Any, text: str, timeout: float = 30.0) -> None:
    """Wait until ``text`` is in the page's visible text."""
    try:
        wait_until(lambda: text in page_text(browser), f"{text!r} appearing", timeout)
    except TimeoutError as error:
        raise TimeoutError(f"{error}; the page says: {page_text(browser)[:500]!r}") from None


def wait_for_value(browser: Any, css: str, text: str, timeout: float = 30.0) -> str:
    """Wait until the form field at ``css`` holds ``text``; returns its whole value."""

    def value() -> str | None:
        current = browser.find_element("css selector", css).get_attribute("value") or ""
        return current if text in current else None

    found: str = wait_until(value, f"{css} containing {text!r}", timeout)
    return found
