"""The README's screenshots of the web page: starts `charrnn serve RUN` on a free local port and captures
Write (with branches), Inspect by surprisal (a character's guesses shown) and Inspect by the unit that
find units ranks first for a probe, with headless Chromium driven by Playwright.

    python docs/screenshots.py checkpoints/stdlib [--out docs] [--probe in_quotes]

The README's images come from an LSTM 2x512 trained on the Python standard library's sources (see the
README's section on the page); any run works. Inspect reads this repository's own charrnn/units.py, code
the model never saw."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.test_web import free_port, wait_until_up  # noqa: E402  (one way to start and wait for the server)

PROMPT = "def read_config(path):\n    "
TIMEOUT = 120_000


def write_view(page: Page, out: Path) -> None:
    page.fill("#length", "90")
    page.fill("#temperature", "0.6")
    page.fill("#seed", "7")
    editor = page.locator("#editor")
    editor.fill(PROMPT)
    editor.press("Control+Enter")
    expect(page.locator("#write-status")).to_contain_text("wrote", timeout=TIMEOUT)
    page.fill("#length", "160")
    page.fill("#branches", "3")
    editor.press("Control+Shift+Enter")
    expect(page.locator("#branch-list .branch.done")).to_have_count(3, timeout=TIMEOUT)
    page.screenshot(path=out / "web-write.png")


def inspect_view(page: Page, text: str, out: Path) -> None:
    page.click("#tab-inspect")
    page.locator("#inspect-input").fill(text)
    page.click("#analyze")
    expect(page.locator("#inspect-status")).to_contain_text("bits per character", timeout=TIMEOUT)
    page.locator("#inspect-input").evaluate("input => (input.scrollTop = 0)")
    at = text.index("np.zeros") + 3  # a character whose guesses say something: what follows "np."
    page.locator("#view span").nth(at).hover()
    expect(page.locator("#tip")).to_be_visible()
    page.screenshot(path=out / "web-inspect.png")


def units_view(page: Page, probe: str, out: Path) -> None:
    page.mouse.move(0, 0)
    page.click("#find-units")
    row = page.locator("#units tbody tr", has_text=probe)
    expect(row).to_have_count(1, timeout=TIMEOUT)
    row.locator("button").first.click()
    expect(page.locator("#legend")).to_contain_text("unit", timeout=TIMEOUT)
    page.locator("#tip").evaluate("tip => tip.hidden = true")
    page.screenshot(path=out / "web-units.png", full_page=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="the run folder or checkpoint to serve")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="folder for the PNGs")
    parser.add_argument("--probe", default="in_quotes", help="whose best unit the third image shows")
    parser.add_argument("--url", help="use the server already running here instead of starting one on RUN")
    args = parser.parse_args()
    out = Path(args.out)
    text = (ROOT / "charrnn" / "units.py").read_text(encoding="utf-8")
    text = text[text.index("def char_probes") :][:2400]
    if args.url:
        capture(args.url, text, args.probe, out)
        return
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "charrnn", "serve", args.run, "--port", str(port), "--precision", "fp32"],
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, server)
        capture(url, text, args.probe, out)
    finally:
        server.terminate()
        server.wait(timeout=30)


def capture(url: str, text: str, probe: str, out: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(url + "/")
        write_view(page, out)
        inspect_view(page, text, out)
        units_view(page, probe, out)
        browser.close()


if __name__ == "__main__":
    main()
