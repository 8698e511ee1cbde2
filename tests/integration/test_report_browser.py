"""The HTML report of a real match, rendered in headless Chromium.

Three real members match over mutual TLS; `aif-node report --format html --output FILE` writes
the page, and Chromium must render it with every section, a visible chart, one row per clue of
the JSON report and no console error. The page's Content-Security-Policy forbids every fetch,
so a fetch would show up as a console error too. The screenshot is kept in test-artifacts/.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.sampledata import make_federation, write_member_files
from tests.external import unavailable

from .conftest import Member

KINDS = ("phone", "id_card", "bank_card")
HOSTILE = "<script>alert(1)</script>"
QUOTED = "say \"hi\" & 'bye'"
SECTIONS = ("summary", "timeline", "by-kind", "by-peer", "clues")
WIDTH = 1400


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Headless Chromium through the system's chromedriver; nothing is ever downloaded."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        unavailable("the HTML report test needs chromium and chromedriver on PATH")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("the HTML report test needs selenium (pip install -e '.[dev]')")
    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium-manager must not fetch a driver
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={WIDTH},900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _render(driver: Any, page: Path, screenshot: Path) -> None:
    """Open the page, then photograph all of it: the window as tall as the document."""
    driver.get(page.as_uri())
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, int(height))
    assert driver.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _severe(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _fetches(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]*""", page, re.I)


def test_the_report_of_a_real_match_renders_in_a_browser(
    members: Any, tmp_path: Path, browser: Any, artifact_dir: Path
) -> None:
    fed = make_federation(("bank", "lender", "platform"), KINDS, size=40, shared=5, seed=7)
    trio = members("bank", "lender", "platform")
    bank = trio[0]
    for m in trio:
        for kind, path in write_member_files(fed.member(m.name), tmp_path / f"{m.name}-x").items():
            m.cli("import", str(path), "--kind", kind)
        # One clue every member holds, with labels a careless page would execute or break on.
        hostile = tmp_path / f"{m.name}-hostile.jsonl"
        row = {"phone": "+8613700137000", "labels": [HOSTILE, QUOTED]}
        hostile.write_text(json.dumps(row) + "\n", encoding="utf-8")
        m.cli("import", str(hostile), "--kind", "phone")
    for a in trio:
        for b in trio:
            if a is not b:
                a.pin(b)
    for m in trio:
        m.start()
    bank.cli("match")

    held = bank.json("report")
    assert len(held) > 10
    page_path = tmp_path / "report.html"
    bank.cli("report", "--format", "html", "--output", str(page_path))
    assert page_path.stat().st_mode & 0o077 == 0
    page = page_path.read_text(encoding="utf-8")
    assert _fetches(page) == []

    _render(browser, page_path, artifact_dir / "report.png")
    by_css = "css selector"
    assert browser.title == "Clue collisions at bank"
    for section in SECTIONS:
        assert browser.find_element("id", section).is_displayed(), section
    box = browser.execute_script(
        "const r = document.querySelector('svg.chart').getBoundingClientRect();"
        "return [r.width, r.height];"
    )
    assert box[0] > 0 and box[1] > 0
    assert browser.find_elements(by_css, "svg.chart rect.bar")
    assert len(browser.find_elements(by_css, "#clues tr.clue")) == len(held)
    # The hostile labels are shown as text, never run: the page has no script at all.
    tags = [t.text for t in browser.find_elements(by_css, "#clues .tag")]
    assert HOSTILE in tags and QUOTED in tags
    assert browser.execute_script("return document.scripts.length") == 0
    counts = browser.execute_script(
        "return [...document.querySelectorAll('#clues tr.clue td:nth-child(4)')]"
        ".map(td => Number(td.textContent));"
    )
    assert counts == sorted(counts, reverse=True) and counts[0] == 2  # the most members first
    both = browser.find_element("xpath", "//tr[contains(., '+8613700137000')]/td[4]")
    assert both.text == "2"
    assert _severe(browser) == []


def test_an_empty_report_renders_and_says_so(
    tmp_path: Path, browser: Any, artifact_dir: Path
) -> None:
    member = Member("bank", tmp_path)
    member.init()
    page_path = tmp_path / "empty.html"
    member.cli("report", "--format", "html", "--since", "2026-01-01", "--output", str(page_path))
    _render(browser, page_path, artifact_dir / "report-empty.png")
    assert "No collisions since 2026-01-01" in browser.find_element("id", "clues").text
    assert browser.find_elements("css selector", "#clues tr.clue") == []
    assert _severe(browser) == []
    assert browser.find_elements("css selector", "svg, table") == []  # nothing to chart
