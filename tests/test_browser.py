"""The chat page in headless Chromium (Playwright): a question typed and answered, its quotes
and sources shown; article markup shown as text. Screenshots go to tests/artifacts/ (and to
docs/screenshot.png when SCREENSHOT=1).

Chromium is the system one at /usr/bin/chromium (Playwright cannot download a browser here).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
QUESTION = "How many Hamas fighters are in Rafah?"
FOLLOW_UP = "Who led the American side in the virtual meeting?"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _serve(index_dir: Path, corpus: Path) -> tuple[Any, str]:
    from rag.chat import build_app, launch

    app = build_app(index_dir, uploads_dir=corpus)
    port = _free_port()
    launch(app, "127.0.0.1", port, block=False, quiet=True)
    return app, f"http://127.0.0.1:{port}/"


def _copy_corpus(root: Path) -> Path:
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    for path in sorted((ROOT / "corpus").glob("*.txt")):
        shutil.copy(path, corpus / path.name)
    return corpus


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _ask(page: Any, question: str, answers_before: int) -> float:
    """Type and submit a question; seconds until its answer and sources are on the page."""
    box = page.locator("#rag-question textarea")
    box.fill(question)
    started = time.perf_counter()
    box.press("Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('#rag-chat .message-row.bot-row').length > n"
        " && document.querySelector('#rag-sources .rag-passage') !== null",
        arg=answers_before,
        timeout=120_000,
    )
    return time.perf_counter() - started


@pytest.mark.slow
def test_question_answered_in_the_browser(browser: Any, real_index: Path, tmp_path: Path) -> None:
    """The real model (conftest's `real_index`: the corpus indexed with the bundled model in a
    temporary folder): the page answers with an outlet's quote and lists its passages."""
    from rag.api import ask

    index_dir = real_index
    corpus = _copy_corpus(tmp_path)  # where uploads would go; this test adds none
    expected = ask(QUESTION, index_dir=index_dir)
    assert expected.quotes, expected.text

    app, url = _serve(index_dir, corpus)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#rag-question textarea")
        first = _ask(page, QUESTION, 0)

        chat = _words(page.inner_text("#rag-chat"))
        assert QUESTION in chat
        assert any(_words(q.text) in chat for q in expected.quotes), chat
        assert expected.quotes[0].outlet in chat
        bold = page.locator("#rag-chat .bot-row strong").all_inner_texts()
        assert expected.quotes[0].outlet in bold  # the outlet is named, in bold, above its quote

        passages = page.locator("#rag-sources .rag-passage")
        assert passages.count() == len(expected.passages)
        marked = _words(" ".join(page.locator("#rag-sources mark").all_inner_texts()))
        assert _words(expected.quotes[0].text) in marked
        sources = page.inner_text("#rag-sources")
        assert expected.quotes[0].outlet in sources and expected.quotes[0].title in sources

        # The chat scrolls to the end of a long answer; show it from the question for the picture
        # (a full-page screenshot resizes the page, which scrolls the chat down again).
        page.wait_for_timeout(1000)  # let the chat finish its own scrolling first
        page.evaluate("() => document.querySelectorAll('#rag-chat .bubble-wrap').forEach(e => { e.scrollTop = 0; })")
        page.evaluate("() => window.scrollTo(0, 0)")
        page.wait_for_timeout(300)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "chat.png"))
        if os.environ.get("SCREENSHOT") == "1":
            page.screenshot(path=str(ROOT / "docs" / "screenshot.png"))

        second = _ask(page, FOLLOW_UP, 1)
        assert "Sullivan" in page.inner_text("#rag-chat")
        timing = {"question": QUESTION, "first_answer_seconds": round(first, 3), "follow_up_seconds": round(second, 3)}
        (ARTIFACTS / "browser_timing.json").write_text(json.dumps(timing, indent=1) + "\n", encoding="utf-8")
        print(f"\nquestion-to-answer in the browser: first {first:.2f}s, follow-up {second:.2f}s")
        assert first < 60 and second < 60
    finally:
        app.close(verbose=False)


def test_article_markup_is_text_in_the_browser(browser: Any, tmp_path: Path) -> None:
    """An uploaded article whose headline, outlet and text carry <script> and <img onerror>
    is shown as text: no dialog, no handler runs, no element is injected."""
    from rag.embed import HashEmbedder
    from rag.index import build_index

    corpus = _copy_corpus(tmp_path)
    index_dir = tmp_path / "index"
    build_index([corpus], index_dir, embedder=HashEmbedder())
    article = tmp_path / "zebra <b>tents<b> &amp;.txt"
    article.write_text(
        "Title: Tents <script>window.__xss = 'title'</script>\n"
        "Outlet: Zebra <img src=x onerror=\"window.__xss='outlet'\"> Gazette\n\n"
        "The ministry ordered 17,000 zebra-striped quarantine tents from a supplier in Ashkelon. "
        "<img src=x onerror=\"window.__xss='body'\"><script>window.__xss='script'</script> "
        "The tents will arrive next month, officials said.\n",
        encoding="utf-8",
    )

    app, url = _serve(index_dir, corpus)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        dialogs: list[str] = []

        def on_dialog(dialog: Any) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.goto(url)
        page.wait_for_selector("#rag-question textarea")
        page.get_by_text("Add articles").click()
        page.locator("#rag-upload input[type=file]").set_input_files(str(article))
        page.wait_for_function(
            "() => (document.querySelector('#rag-upload-status') || {}).innerText?.includes('Added')",
            timeout=60_000,
        )
        status = page.inner_text("#rag-upload-status")
        # shown as text (gradio itself drops "<>" from uploaded file names; "&amp;" must stay literal)
        assert "Zebra <img" in status and "&amp;.txt" in status

        # The new outlet is ticked, so the question searches it.
        assert page.get_by_label("Zebra <img src=x onerror=\"window.__xss='outlet'\"> Gazette").is_checked()
        _ask(page, "How many zebra-striped quarantine tents did the ministry order?", 0)
        chat = page.inner_text("#rag-chat")
        assert "17,000 zebra-striped quarantine tents" in chat
        sources = page.inner_text("#rag-sources")
        assert "<script>window.__xss='script'</script>" in sources
        assert "Tents <script>window.__xss = 'title'</script>" in sources

        page.wait_for_timeout(500)  # give any injected handler the chance to run
        assert page.evaluate("() => window.__xss === undefined")
        assert dialogs == []
        assert page.locator("#rag-sources img, #rag-sources script, #rag-chat img[src='x']").count() == 0
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "markup_as_text.png"), full_page=True)
    finally:
        app.close(verbose=False)


def test_example_button_asks(browser: Any, tmp_path: Path) -> None:
    """Clicking an example question asks it."""
    from rag.embed import HashEmbedder
    from rag.index import build_index

    corpus = _copy_corpus(tmp_path)
    index_dir = tmp_path / "index"
    build_index([corpus], index_dir, embedder=HashEmbedder())
    app, url = _serve(index_dir, corpus)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.get_by_role("button", name=FOLLOW_UP).click()
        page.wait_for_function(
            "() => document.querySelectorAll('#rag-chat .message-row.bot-row').length > 0"
            " && document.querySelector('#rag-sources .rag-passage') !== null",
            timeout=60_000,
        )
        chat = page.inner_text("#rag-chat")
        assert FOLLOW_UP in chat and "Sullivan" in chat
    finally:
        app.close(verbose=False)
