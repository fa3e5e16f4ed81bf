"""The web page in a real browser: headless Chromium (the distribution's package, driven by Playwright)
against `charrnn serve` on a free local port, serving a small model trained for the suite.
No skip: .ci/run installs chromium where it is missing, and a machine without it fails here."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from charrnn import trainer, units
from charrnn.config import DataConfig, TrainConfig
from tests.conftest import CLI, SMALL_MODEL

PRIME = "ROMEO:\n"
QUOTED = 'JULIET:\nSay "hello" (and [then] go).\nROMEO:\nI will, my love.\n'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"charrnn serve exited: {server.stderr.read()}")
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=5):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("charrnn serve did not answer in time")


def quoted_play(text: str) -> str:
    """The play with quoted lines and bracketed asides: characters and structure for the probes."""
    lines = []
    for i, line in enumerate(text.splitlines()):
        if line and not line.endswith(":"):
            line = f'"{line}"' if i % 3 == 0 else f"{line} (aside [softly])" if i % 4 == 1 else line
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def web_run(play_text: str, tmp_path_factory) -> Path:
    """A small fp32 LSTM trained briefly on the quoted play; its run folder."""
    root = tmp_path_factory.mktemp("web")
    corpus = root / "quoted.txt"
    corpus.write_text(quoted_play(play_text[:100_000]), encoding="utf-8")
    cfg = TrainConfig(
        max_steps=200, eval_every=100, batch_size=16, seq_len=32, warmup_steps=10, lr=1e-2, precision="fp32"
    )
    data = DataConfig(sources=[str(corpus)], cache_dir=str(root / "cache"))
    trainer.train(data, SMALL_MODEL, cfg, out=str(root / "run"), command=["charrnn", "train", str(corpus)])
    return root / "run"


@pytest.fixture(scope="session")
def server(web_run: Path, tmp_path_factory) -> Iterator[str]:
    """`charrnn serve` with two models (the trained run, and a copy under another name, for the
    model picker); its base URL."""
    second = tmp_path_factory.mktemp("models") / "second"
    shutil.copytree(web_run, second)
    port = free_port()
    command = [*CLI, "serve", str(web_run), str(second), "--port", str(port), "--precision", "fp32"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("chromium is not installed: `apt-get install chromium` (.ci/run does it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    """The page, loaded; after the test, checks that it asked nothing of any other host."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    requested: list[str] = []
    opened.on("request", lambda request: requested.append(request.url))
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.goto(server + "/")
    expect(opened.locator("#model-info")).to_contain_text("lstm 2x64")
    yield opened
    context.close()
    assert requested and all(url.startswith(server + "/") for url in requested), requested
    assert not errors, errors


def settings(page: Page, **values: str) -> None:
    for name, value in values.items():
        page.fill(f"#{name.replace('_', '-')}", value)


def test_the_page_and_its_files_come_from_the_package_with_a_strict_policy(server: str):
    with urllib.request.urlopen(server + "/") as response:
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        html = response.read().decode()
    assert '<textarea id="editor"' in html and "http://" not in html and "https://" not in html
    for name in ("app.js", "style.css"):
        with urllib.request.urlopen(f"{server}/static/{name}") as response:
            body = response.read().decode()
        assert "http://" not in body and "https://" not in body  # no CDN, font or tracker


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_the_pages_endpoints_answer_and_refuse_bad_requests(server: str):
    with urllib.request.urlopen(server + "/v1/web/models") as response:
        described = json.loads(response.read())
    assert set(described) == {"run", "second"}
    assert described["run"]["layers"] == 2 and described["run"]["units"] == 64
    assert described["run"]["kinds"] == ["hidden", "cell", "input", "forget", "cell_gate", "output"]
    status, found = post(server + "/v1/units", {"model": "run", "text": QUOTED * 3, "kind": "cell", "top": 2})
    assert status == 200 and [p["name"] for p in found["probes"]] == list(units.PROBES)
    assert all(len(p["units"]) == 2 and all(abs(u["r"]) <= 1 for u in p["units"]) for p in found["probes"])
    for body, status, words in [
        ({"model": "run", "text": "x", "layers": [0]}, 400, "unknown field 'layers'"),
        ({"model": "run", "text": "x", "kind": "bogus"}, 400, "bogus"),
        ({"model": "run", "text": "x", "layer": 7}, 400, "layer"),
        ({"model": "run", "kind": "cell"}, 400, "text is missing"),
        ({"model": "run", "text": 5}, 400, "text must be str"),
        ({"text": "x"}, 400, "name a model"),
        ({"model": "nope", "text": "x"}, 404, "unknown model"),
    ]:
        answer = post(server + "/v1/units", body)
        assert answer[0] == status and words in answer[1]["error"], (body, answer)


def test_write_continues_at_the_cursor_and_streams(page: Page):
    settings(page, length="300", temperature="0.8", seed="3")
    editor = page.locator("#editor")
    editor.fill(PRIME + "tail")
    editor.evaluate("(e) => e.setSelectionRange(7, 7)")  # the cursor before 'tail'
    editor.press("Control+Enter")
    expect(page.locator("#write-status")).to_contain_text("wrote 300 characters", timeout=60_000)
    text = editor.input_value()
    assert text.startswith(PRIME) and text.endswith("tail") and len(text) == len(PRIME + "tail") + 300
    pieces = int(page.locator("#write-status").inner_text().split(" in ")[1].split()[0])
    assert pieces > 1  # it arrived as it was generated, not at the end


def test_branches_side_by_side_and_one_is_taken(page: Page):
    settings(page, length="40", branches="3", seed="1")
    page.locator("#editor").fill(PRIME)
    page.click("#branch")
    cards = page.locator("#branch-list .branch.done")
    expect(cards).to_have_count(3, timeout=60_000)
    texts = [card.locator("pre > span").last.text_content() for card in cards.all()]
    assert all(len(t) == 40 for t in texts) and len(set(texts)) > 1
    page.locator("#editor").press("Alt+2")  # the keyboard takes a branch as a click does
    expect(page.locator("#editor")).to_have_value(PRIME + texts[1])
    expect(page.locator("#branch-list .branch")).to_have_count(0)


def test_beam_branches_are_the_n_best(page: Page):
    settings(page, length="30", branches="2", beam="4")
    page.locator("#editor").fill(PRIME)
    page.click("#branch")
    expect(page.locator("#branch-list .branch.done")).to_have_count(2, timeout=60_000)
    first = page.locator("#branch-list .branch pre > span:last-child").first.text_content()
    page.locator("#branch-list .branch").first.click()
    expect(page.locator("#editor")).to_have_value(PRIME + first)


def test_a_new_request_cancels_the_one_in_flight(page: Page):
    settings(page, length="2000", branches="2")
    page.locator("#editor").fill(PRIME)
    page.click("#continue")
    settings(page, length="20")
    page.click("#branch")  # before the long continuation could finish
    expect(page.locator("#branch-list .branch.done")).to_have_count(2, timeout=60_000)
    written = len(page.locator("#editor").input_value()) - len(PRIME)
    assert written < 2000  # the continuation stopped
    page.wait_for_timeout(300)
    assert len(page.locator("#editor").input_value()) - len(PRIME) == written  # and stays stopped
    settings(page, length="2000")
    page.locator("#editor").press("End")
    page.locator("#editor").press("Control+Enter")
    page.locator("#editor").press("Escape")
    expect(page.locator("#write-status")).to_contain_text("stopped")


def inspect(page: Page, text: str) -> None:
    page.click("#tab-inspect")
    page.locator("#inspect-input").fill(text)
    page.locator("#inspect-input").press("Control+Enter")
    expect(page.locator("#view span")).to_have_count(len(text), timeout=60_000)  # char tokenizer: one per char


def backgrounds(page: Page) -> list[str]:
    return page.eval_on_selector_all("#view span", "spans => spans.map(s => s.style.backgroundColor)")


def test_inspect_shades_by_surprisal_and_shows_the_guesses(page: Page):
    inspect(page, QUOTED)
    assert len(set(backgrounds(page))) > 5
    expect(page.locator("#legend")).to_contain_text("bits")
    expect(page.locator("#legend .bar span")).to_have_text(["0", "2", "4", "6", "8", "10", "12+"])
    assert "bits per character" in page.locator("#inspect-status").inner_text()
    page.locator("#view span").nth(8).hover()  # 'S' of "Say"
    tip = page.locator("#tip")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("“S”")
    expect(tip.locator("tr")).to_have_count(5)
    percentages = [float(t.rstrip("%")) for t in tip.locator("td.p").all_inner_texts()]
    assert percentages == sorted(percentages, reverse=True) and 0 < sum(percentages) <= 100.01
    page.locator("#view").focus()
    page.keyboard.press("ArrowRight")
    expect(tip).to_contain_text("“J”")


def test_inspect_shades_by_a_unit_and_a_gate(page: Page):
    inspect(page, QUOTED)
    surprisal = backgrounds(page)
    page.select_option("#layer", "1")
    page.fill("#unit", "5")
    expect(page.locator("#legend")).to_contain_text("layer 1 hidden unit 5")
    by_unit = backgrounds(page)
    assert by_unit != surprisal and len(set(by_unit)) > 5
    page.select_option("#kind", "forget")
    expect(page.locator("#legend")).to_contain_text("layer 1 forget unit 5")
    expect(page.locator("#legend .bar span")).to_have_text(["0.00", "0.25", "0.50", "0.75", "1.00"])
    page.locator("#view span").nth(3).hover()
    expect(page.locator("#tip")).to_contain_text("activation")


def test_find_units_ranks_and_clicks_through(page: Page):
    inspect(page, QUOTED * 4)
    page.click("#find-units")
    rows = page.locator("#units tbody tr")
    expect(rows).to_have_count(5, timeout=60_000)
    expect(rows.first).to_contain_text("in_quotes")
    best = rows.nth(2).locator("button").first  # line_position's best unit
    layer, unit = best.get_attribute("data-layer"), best.get_attribute("data-unit")
    best.click()
    expect(page.locator("#legend")).to_contain_text(f"layer {layer} hidden unit {unit}")
    expect(page.locator("#unit")).to_have_value(unit)
    assert page.locator("#shade").input_value() == "unit"


def test_ten_thousand_characters_render_and_stay_responsive(page: Page):
    text = (QUOTED * 200)[:10_000]
    inspect(page, text)
    page.select_option("#kind", "cell")
    expect(page.locator("#legend")).to_contain_text("layer 0 cell unit 0", timeout=60_000)
    page.locator("#view span").nth(9_990).hover()
    expect(page.locator("#tip")).to_be_visible()
    assert page.evaluate("1 + 1") == 2  # the page still answers


def test_the_model_picker_lists_every_model_with_its_info(page: Page):
    picker = page.locator("#model")
    expect(picker).to_be_visible()
    names = picker.locator("option").all_inner_texts()
    assert len(names) == 2 and "second" in names
    picker.select_option("second")
    expect(page.locator("#model-info")).to_contain_text("second: lstm 2x64")
    expect(page.locator("#model-info")).to_contain_text("parameters")


def test_tabs_work_from_the_keyboard(page: Page):
    page.locator("#tab-write").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#inspect")).to_be_visible()
    expect(page.locator("#tab-inspect")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#write")).to_be_visible()
