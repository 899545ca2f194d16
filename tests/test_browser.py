"""The chat page in headless Chromium (Playwright): a question typed and answered, its quotes
and sources shown; the question on screen before its answer, the answer shown from its top; only
the quoted passages until "more passages" is opened, no sentence highlighted twice; the page at
phone width; article markup shown as text. Screenshots go to tests/artifacts/ (and to
docs/screenshot.png when SCREENSHOT=1).

Chromium is the system one at /usr/bin/chromium (Playwright cannot download a browser here).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import socket
import threading
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
# Questions whose quoted sentences fall in two overlapping passages of one article, with other
# passages found but not quoted: the first that still does is used.
OVERLAP_QUESTIONS = (
    "When will the follow-up meeting be held?",
    "What did the Israeli side agree to?",
    "Where will the follow-up meeting be held?",
)
# Five outlets with a long sentence each on one question: an answer taller than the chat.
LONG_QUESTION = "How many solar-powered desalination units did the water ministry buy?"
LONG_ARTICLES = {
    "The Coastal Herald": "The water ministry bought 1,200 solar-powered desalination units for the southern villages "
    "this spring, officials said on Monday, adding that the first of them would be installed in Yeruham and Mitzpe "
    "Ramon before the summer heat arrives and that every village council had been asked to name a site for them.",
    "Desert Daily": "Some 1,350 desalination units running on solar power were bought by the water ministry, according "
    "to a procurement document seen by this newspaper, which also lists a maintenance contract for ten years and a "
    "clause that lets the ministry order another batch if the pilot in the Arava succeeds.",
    "The Northern Ledger": "Our reporter counted 1,100 of the new solar-powered desalination units in a warehouse near "
    "Beersheba, far fewer than the water ministry said it bought, and a spokesman for the ministry declined to explain "
    "the difference when asked about it on Tuesday evening.",
    "Valley Voice": "Residents of the Bedouin villages were told that 1,275 desalination units powered by solar panels "
    "had been bought by the ministry of water, though many of them said they had heard such promises before and would "
    "believe it when clean water came out of the taps in their homes.",
    "The Harbour Gazette": "The ministry says it bought 1,400 solar-powered desalination units, each able to turn "
    "brackish groundwater into 500 litres of drinking water a day, at a cost the state comptroller has already asked "
    "to review because the tender was published for only nine days in the middle of the holidays.",
}

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


def _serve(index_dir: Path, uploads: Path) -> tuple[Any, str]:
    from rag.chat import build_app, launch

    app = build_app(index_dir, uploads_dir=uploads)
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
def fake_site(tmp_path: Path) -> tuple[Path, Path]:
    """(index, uploads folder): the corpus and LONG_ARTICLES indexed with the fast hash embedder."""
    from rag.embed import HashEmbedder
    from rag.index import build_index

    corpus = _copy_corpus(tmp_path)
    for number, (outlet, text) in enumerate(LONG_ARTICLES.items()):
        (corpus / f"desalination_{number}.txt").write_text(
            f"Title: Water ministry buys desalination units\nOutlet: {outlet}\n\n{text} Critics said it was rushed.\n",
            encoding="utf-8",
        )
    index_dir = tmp_path / "index"
    build_index([corpus], index_dir, embedder=HashEmbedder())
    return index_dir, tmp_path / "uploads"


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _shot(page: Any, name: str, **kwargs: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), **kwargs)


def _wait_for_answer(page: Any, answers_before: int, timeout: float = 120_000) -> None:
    """Until answer number `answers_before + 1` and its sources are on the page."""
    page.wait_for_function(
        "n => [...document.querySelectorAll('#rag-chat .message-row.bot-row')]"
        "       .filter(r => !r.innerText.includes('Searching the articles')).length > n"
        " && document.querySelector('#rag-sources .rag-passage') !== null",
        arg=answers_before,
        timeout=timeout,
    )


def _ask(page: Any, question: str, answers_before: int) -> float:
    """Type and submit a question; seconds until its answer and sources are on the page."""
    box = page.locator("#rag-question textarea")
    box.fill(question)
    started = time.perf_counter()
    box.press("Enter")
    _wait_for_answer(page, answers_before)
    return time.perf_counter() - started


# Where the newest message of the chat is: its top and bottom relative to the chat's visible
# area (the scrolled log), the top of the message before it, the height of that area, and the
# message's top in the window.
LAST_MESSAGE = """() => {
  const log = document.querySelector('#rag-chat [role=log]');
  const rows = document.querySelectorAll('#rag-chat .message-row');
  const last = rows[rows.length - 1].getBoundingClientRect();
  const before = rows.length > 1 ? rows[rows.length - 2].getBoundingClientRect() : last;
  const area = log.getBoundingClientRect();
  return {top: last.top - area.top, bottom: last.bottom - area.top, before_top: before.top - area.top,
          height: log.clientHeight, window_top: last.top, window_height: window.innerHeight,
          text: rows[rows.length - 1].innerText};
}"""


def _answer_top_in_view(page: Any) -> dict[str, Any]:
    """Where the newest answer is once the page has scrolled to it: its top (and the question
    before it) in the upper half of the chat."""
    settled = f"() => {{ const m = ({LAST_MESSAGE})(); return m.before_top >= 0 && m.top <= m.height / 2; }}"
    page.wait_for_function(settled, timeout=10_000)
    where: dict[str, Any] = page.evaluate(LAST_MESSAGE)
    return where


@pytest.mark.slow
def test_question_answered_in_the_browser(browser: Any, real_index: Path, tmp_path: Path) -> None:
    """The real model (conftest's `real_index`: the corpus indexed with the bundled model in a
    temporary folder): the page answers with an outlet's quote and lists its passages."""
    from rag.api import ask
    from rag.chat import merge_passages, quote_spans

    expected = ask(QUESTION, index_dir=real_index)
    assert expected.quotes, expected.text
    quoted = [p for p in merge_passages(expected.passages) if quote_spans(p, expected.quotes)]

    app, url = _serve(real_index, tmp_path / "uploads")
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

        shown = page.locator("#rag-sources .rag-passage:visible")
        assert shown.count() == len(quoted)
        marked = _words(" ".join(page.locator("#rag-sources mark").all_inner_texts()))
        assert _words(expected.quotes[0].text) in marked
        sources = page.inner_text("#rag-sources")
        assert expected.quotes[0].outlet in sources and expected.quotes[0].title in sources
        _answer_top_in_view(page)
        page.evaluate("() => window.scrollTo(0, 0)")
        _shot(page, "chat.png")
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


def test_question_shows_at_once_and_the_answer_from_its_top(
    browser: Any, fake_site: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The question and a working indicator are in the chat while the answer is being found (the
    answer is held back until the test has looked); a long answer is then shown from its top."""
    import rag.chat

    index_dir, uploads = fake_site
    release = threading.Event()
    answer = rag.chat.ask

    def held_ask(*args: Any, **kwargs: Any) -> Any:
        release.wait(timeout=60)
        # The page is under test, not the answer: make sure the answer is longer than the chat
        # by adding every outlet's article as a quote below what the answer says.
        given = answer(*args, **kwargs)
        extra = "\n\n".join(f"**{outlet}**\n> {text}" for outlet, text in LONG_ARTICLES.items())
        return dataclasses.replace(given, text=f"{given.text}\n\n{extra}")

    app, url = _serve(index_dir, uploads)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#rag-question textarea")
        _ask(page, FOLLOW_UP, 0)  # an earlier turn above, so "the end of the chat" is not its top

        monkeypatch.setattr(rag.chat, "ask", held_ask)
        page.locator("#rag-question textarea").fill(LONG_QUESTION)
        page.locator("#rag-ask").click()
        page.wait_for_function(
            "q => document.querySelector('#rag-chat').innerText.includes(q)"
            " && document.querySelector('#rag-chat').innerText.includes('Searching the articles')",
            arg=LONG_QUESTION,
            timeout=20_000,
        )
        assert not release.is_set()  # the answer has not been given yet
        rows = page.locator("#rag-chat .message-row")
        question_row = rows.nth(rows.count() - 2)
        assert LONG_QUESTION in question_row.inner_text() and question_row.is_visible()
        box = question_row.bounding_box()
        log = page.locator("#rag-chat [role=log]").bounding_box()
        assert box is not None and log is not None
        assert log["y"] <= box["y"] and box["y"] + box["height"] <= log["y"] + log["height"]  # on screen
        assert "Looking for the passages" in page.inner_text("#rag-sources")
        assert page.locator("#rag-question textarea").input_value() == ""
        _shot(page, "question_waiting.png")

        release.set()
        _wait_for_answer(page, 1)
        where = _answer_top_in_view(page)
        # The newest message is the answer to the long question: its direct answer line first, then
        # quotes from several of the outlets.
        assert _words(where["text"]).startswith("Answer:")
        assert sum(outlet in where["text"] for outlet in LONG_ARTICLES) >= 2
        assert where["bottom"] - where["top"] > where["height"]  # a long answer: taller than the chat
        assert where["bottom"] > where["height"]  # ...so showing its top means its end is still below
        assert 0 <= where["window_top"] < where["window_height"]
        _shot(page, "answer_top.png")
    finally:
        release.set()
        app.close(verbose=False)


def test_sources_show_quoted_passages_until_more_is_opened(browser: Any, fake_site: tuple[Path, Path]) -> None:
    """Only the passages quoted from are shown, overlapping ones merged so that no sentence is
    highlighted twice; the other passages appear when "more passages" is opened."""
    from rag.api import ask
    from rag.chat import merge_passages, quote_spans

    index_dir, uploads = fake_site
    # A question whose quotes fall in two overlapping passages (which the panel used to show twice).
    for question in OVERLAP_QUESTIONS:
        expected = ask(question, index_dir=index_dir)
        merged = merge_passages(expected.passages)
        quoted = [p for p in merged if quote_spans(p, expected.quotes)]
        in_two = any(sum(1 for p in expected.passages if quote_spans(p, [q])) > 1 for q in expected.quotes)
        if in_two and 0 < len(quoted) < len(merged):
            break
    else:
        pytest.fail(f"none of {OVERLAP_QUESTIONS} has a quote in two passages and unquoted ones; pick another")

    app, url = _serve(index_dir, uploads)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#rag-question textarea")
        _ask(page, question, 0)

        passages = page.locator("#rag-sources .rag-passage")
        assert passages.count() == len(merged)
        assert page.locator("#rag-sources .rag-passage:visible").count() == len(quoted)
        marks = [_words(m) for m in page.locator("#rag-sources mark").all_inner_texts()]
        for quote in expected.quotes:
            assert sum(_words(quote.text) in m for m in marks) == 1, (quote.text, marks)
        more = page.locator("#rag-sources summary")
        assert re.fullmatch(r"\d+ more passages? found but not quoted", more.inner_text().strip())
        _shot(page, "sources_quoted.png")

        more.click()
        assert page.locator("#rag-sources .rag-passage:visible").count() == len(merged)
        assert len(page.locator("#rag-sources mark").all_inner_texts()) == len(marks)  # nothing marked twice
        _shot(page, "sources_more.png", full_page=True)
    finally:
        app.close(verbose=False)


def test_page_works_at_phone_width(browser: Any, fake_site: tuple[Path, Path]) -> None:
    """390 px wide: nothing wider than the screen, the sources under the chat (and the page does
    not say they are on the right), a question asked with the Ask button and its answer in view."""
    index_dir, uploads = fake_site
    app, url = _serve(index_dir, uploads)
    try:
        page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page.goto(url)
        page.wait_for_selector("#rag-question textarea")
        assert "on the right" not in page.inner_text("body")
        page.locator("#rag-question textarea").fill(LONG_QUESTION)
        page.locator("#rag-ask").tap()
        _wait_for_answer(page, 0)
        _answer_top_in_view(page)
        where = page.evaluate(LAST_MESSAGE)
        assert 0 <= where["window_top"] < where["window_height"]  # the answer's start is on the screen

        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide"
        for selector in ("#rag-chat", "#rag-question textarea", "#rag-ask", "#rag-sources", "#rag-outlets"):
            box = page.locator(selector).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (selector, box)
        chat, sources = page.locator("#rag-chat").bounding_box(), page.locator("#rag-sources").bounding_box()
        assert chat is not None and sources is not None and sources["y"] >= chat["y"] + chat["height"]
        assert page.locator("#rag-sources .rag-passage:visible").count() >= 1
        _shot(page, "phone.png")
        _shot(page, "phone_full.png", full_page=True)
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

    app, url = _serve(index_dir, tmp_path / "uploads")
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
    app, url = _serve(index_dir, tmp_path / "uploads")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.get_by_role("button", name=FOLLOW_UP).click()
        _wait_for_answer(page, 0, timeout=60_000)
        chat = page.inner_text("#rag-chat")
        assert FOLLOW_UP in chat and "Sullivan" in chat
    finally:
        app.close(verbose=False)


def test_date_range_shows_only_articles_inside_it(browser: Any, dated_index: Path, tmp_path: Path) -> None:
    """Dates opened, a range typed: every passage in the sources (shown or behind "more") is from an
    article published inside it (or undated, kept and ranked as if old); a wrong date is one line."""
    app, url = _serve(dated_index, tmp_path / "uploads")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#rag-question textarea")
        page.get_by_text("Dates", exact=True).click()
        page.locator("#rag-since input, #rag-since textarea").first.fill("2024-03-05")
        page.locator("#rag-until input, #rag-until textarea").first.fill("2024-03-15")
        _ask(page, "How many aid trucks did the port of Ashdod handle?", 0)
        metas = page.locator("#rag-sources .rag-meta").all_text_contents()
        assert metas and all("Outlet B" in m or "Outlet D" in m for m in metas), metas
        assert any("10 Mar 2024" in m for m in metas)
        assert "Articles from 5 Mar to 15 Mar 2024" in page.locator("#rag-sources .rag-window").inner_text()
        _shot(page, "date_range.png")

        page.locator("#rag-until input, #rag-until textarea").first.fill("2024-03-45")
        page.locator("#rag-question textarea").fill("How many aid trucks?")
        page.locator("#rag-question textarea").press("Enter")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#rag-chat .message-row.bot-row')]"
            ".some(r => r.innerText.includes('invalid until'))",
            timeout=30_000,
        )
        last = page.locator("#rag-chat .message-row.bot-row").last.inner_text().strip()
        assert "invalid until '2024-03-45'" in last and "\n" not in last, last
    finally:
        app.close(verbose=False)
