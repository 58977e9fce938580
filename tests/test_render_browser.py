"""The HTML digest in a real headless browser (Debian's `chromium`): the DOM the user gets.

String checks on the template output cannot prove what a browser builds from it; these load the
file and inspect the parsed DOM. Skipped only where no Chromium binary is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from localdigest.config import Settings
from localdigest.render import load_records, write_digest

RECORDS_FILE = Path(__file__).parent / "golden" / "input-records.json"
HOSTILE_TITLE = "<script>alert(1)</script> & *Bold* [link](javascript:x)"

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((found for name in BROWSERS if (found := shutil.which(name))), None)

pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no Chromium binary on PATH (install Debian's 'chromium' package to run this test)",
)


def chromium(profile: Path, *args: str) -> str:
    """Run headless Chromium offline-ish and return its stdout."""
    assert BROWSER is not None
    command = [
        BROWSER,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


class DomSummary(HTMLParser):
    """Tag counts and the text of each h2, from the DOM Chromium serialised."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}
        self.h2_texts: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "h2":
            self._in_h2 = True
            self.h2_texts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data: str) -> None:
        if self._in_h2:
            self.h2_texts[-1] += data


@pytest.fixture(scope="module")
def digest_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("digest")
    (path,) = write_digest(load_records([RECORDS_FILE]), out, ["html"], Settings())
    return path


def test_browser_dom_shows_hostile_title_as_text(digest_html: Path, tmp_path: Path) -> None:
    dom = chromium(tmp_path / "profile", "--dump-dom", digest_html.as_uri())
    summary = DomSummary()
    summary.feed(dom)
    assert summary.tags.get("script", 0) == 0  # nothing injected, and the page ships none
    assert summary.tags.get("img", 0) == 0
    assert f"2. {HOSTILE_TITLE}" in summary.h2_texts
    assert summary.tags["details"] == 4  # one collapsible per Q&A pair
    assert summary.tags["section"] == 5  # four papers and the failed-papers note


def test_browser_renders_a_phone_screenshot(digest_html: Path, tmp_path: Path) -> None:
    shot = tmp_path / "phone.png"
    chromium(
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=390,1600",
        "--hide-scrollbars",
        digest_html.as_uri(),
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank image


@pytest.mark.parametrize(("scheme", "dark"), [("1", False), ("0", True)])
def test_browser_follows_the_color_scheme(
    digest_html: Path, tmp_path: Path, scheme: str, dark: bool
) -> None:
    import pymupdf

    shot = tmp_path / "scheme.png"
    chromium(
        tmp_path / "profile",
        f"--blink-settings=preferredColorScheme={scheme}",  # 0 dark, 1 light
        f"--screenshot={shot}",
        "--window-size=600,400",
        digest_html.as_uri(),
    )
    background = pymupdf.Pixmap(str(shot)).pixel(2, 2)
    assert (max(background[:3]) < 64) is dark, background
