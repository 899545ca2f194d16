"""The web chat: pure helpers, and the running app driven through its API with gradio_client.

The app runs in this process on a free loopback port, over an index of the five corpus
articles built with the fast HashEmbedder, so answers can be compared with rag.api.ask.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

from rag.api import ask  # noqa: E402
from rag.chat import (  # noqa: E402
    EMPTY_QUESTION_TEXT,
    NO_OUTLET_TEXT,
    SEARCHING_TEXT,
    ChatPage,
    add_files,
    build_app,
    escape,
    highlight,
    launch,
    md_literal,
    merge_passages,
    merge_spans,
    quote_spans,
    safe_filename,
    sources_html,
    unique_destination,
)
from rag.cli import main as rag_main  # noqa: E402
from rag.embed import HashEmbedder  # noqa: E402
from rag.index import build_index  # noqa: E402
from rag.store import MANIFEST, read_manifest  # noqa: E402
from rag.types import Answer, Passage, Quote  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
XSS_TITLE = "Tents <script>alert('title')</script>"
XSS_OUTLET = "Zebra <img src=x onerror=alert(1)> Gazette"
ZEBRA_ARTICLE = (
    f"Title: {XSS_TITLE}\nOutlet: {XSS_OUTLET}\nDate: 2024-04-02\n\n"
    "The ministry ordered 17,000 zebra-striped quarantine tents from a supplier in Ashkelon. "
    "<script>alert('body')</script> The tents will arrive next month, officials said.\n"
)
NEW_ARTICLE = (
    "Title: Rafah crossing gets a new solar plant\nOutlet: The Desert Courier\n\n"
    "Engineers installed 4,200 photovoltaic panels at the Kerem Shalom crossing on Tuesday. "
    "The photovoltaic plant will power the cargo scanners, the operator said.\n"
)


# ---------------------------------------------------------------------------------------------
# Pure helpers


def test_escape_makes_markup_text() -> None:
    assert escape("<script>alert('x')</script>") == "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
    assert escape('<img src=x onerror="alert(1)">') == "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"
    assert escape("A & B") == "A &amp; B"


def test_md_literal_neutralises_markdown_and_html() -> None:
    text = md_literal("# <b>bold</b> *x* [link](http://e.com) `code`")
    assert "<" not in text and ">" not in text
    assert text.startswith("\\#")
    assert "\\*x\\*" in text and "\\[link\\]\\(http://e.com\\)" in text and "\\`code\\`" in text
    assert md_literal("1. first") == "1\\. first"
    assert md_literal("a\n\nb") == "a b"


def test_merge_spans_clips_and_merges() -> None:
    assert merge_spans([(5, 8), (0, 3), (2, 4), (8, 9), (20, 30), (-4, -1), (7, 7)], 10) == [(0, 4), (5, 9)]


def test_highlight_marks_and_escapes() -> None:
    text = "a <b> sentence. <script>x</script> next."
    marked = highlight(text, [(16, 34)])
    assert marked == "a &lt;b&gt; sentence. <mark>&lt;script&gt;x&lt;/script&gt;</mark> next."
    assert highlight("plain", []) == "plain"
    assert highlight("abcdef", [(4, 99), (0, 2), (1, 3)]) == "<mark>abc</mark>d<mark>ef</mark>"


def _passage(text: str, start: int, doc_id: str = "d1", **kw: Any) -> Passage:
    return Passage(
        text=text,
        outlet=kw.get("outlet", "JNS"),
        title=kw.get("title", "Headline"),
        source=kw.get("source", "corpus/a.txt"),
        score=1.0,
        start=start,
        end=start + len(text),
        doc_id=doc_id,
        date=kw.get("date", ""),
        url=kw.get("url", ""),
    )


def _quote(text: str, start: int, doc_id: str = "d1") -> Quote:
    return Quote(
        text=text,
        outlet="JNS",
        title="Headline",
        source="corpus/a.txt",
        start=start,
        end=start + len(text),
        doc_id=doc_id,
    )


def test_quote_spans_use_document_offsets() -> None:
    passage = _passage("First one. Second one. Third one.", start=100)
    quotes = [_quote("Second one.", 111), _quote("Second one.", 111, doc_id="other"), _quote("Elsewhere.", 500)]
    assert quote_spans(passage, quotes) == [(11, 22)]
    assert passage.text[11:22] == "Second one."


def test_sources_html_escapes_everything_and_highlights() -> None:
    text = "Intro. <script>alert(1)</script> was quoted. Outro."
    passage = _passage(
        text,
        start=0,
        outlet="<b>Outlet</b>",
        title='Title "><img src=x onerror=alert(1)>',
        source="dir/<evil>.txt",
        date="2024-04-02",
        url="javascript:alert(1)",
    )
    other = _passage("Unquoted passage.", start=0, doc_id="d2")
    quoted = text[7:44]
    answer = Answer(text="x", quotes=(_quote(quoted, 7),), passages=(other, passage))
    out = sources_html(answer)
    assert "<script" not in out and "<img" not in out and "<b>" not in out and "<evil>" not in out
    assert f"<mark>{escape(quoted)}</mark>" in out
    assert "&lt;b&gt;Outlet&lt;/b&gt;" in out and "2 Apr 2024" in out and "&lt;evil&gt;.txt" in out
    assert "javascript:" not in out  # only http(s) URLs become links
    assert out.index("rag-used") < out.index("Unquoted passage")  # quoted passages first
    linked = sources_html(Answer(text="x", passages=(_passage("t", 0, url="https://example.com/a?b=1&c=2"),)))
    assert 'href="https://example.com/a?b=1&amp;c=2"' in linked
    assert "appear here" in sources_html(None)


DOC = (
    "The first sentence opens the article. The second sentence has the figure, 4,200 panels. "
    "A third sentence follows it. The fourth one closes the paragraph. A fifth adds a detail."
)


def _doc_passage(start: int, end: int, doc_id: str = "d1", text: str | None = None) -> Passage:
    return _passage(DOC[start:end] if text is None else text, start=start, doc_id=doc_id)


def test_merge_passages_joins_overlapping_and_touching_passages_of_one_document() -> None:
    first = _doc_passage(0, 90)
    overlapping = _doc_passage(38, 117)
    inside = _doc_passage(10, 30)
    touching = _doc_passage(117, 150)
    other_doc = _doc_passage(0, 90, doc_id="d2")
    apart = _doc_passage(155, len(DOC))
    merged = merge_passages([other_doc, overlapping, apart, first, inside, touching])
    assert [(p.doc_id, p.start, p.end) for p in merged] == [("d2", 0, 90), ("d1", 0, 150), ("d1", 155, len(DOC))]
    assert merged[1].text == DOC[0:150]  # in the order of each group's best passage
    # Offsets that do not agree with the texts (a stale index) are not glued into a wrong text.
    wrong = _doc_passage(38, 117, text="x" * 79)
    assert [p.text for p in merge_passages([first, wrong])] == [DOC[0:90], "x" * 79]


def test_sources_show_quoted_passages_first_each_sentence_once_the_rest_behind_more() -> None:
    figure = DOC.index("The second")
    quote = _quote("The second sentence has the figure, 4,200 panels.", figure)
    answer = Answer(
        text="x",
        quotes=(quote,),
        passages=(_doc_passage(0, 117), _doc_passage(38, 150), _passage("Unrelated text.", 0, doc_id="d9")),
    )
    out = sources_html(answer)
    shown, _, more = out.partition("<details")
    assert out.count("<mark>") == 1 and f"<mark>{escape(quote.text)}</mark>" in shown  # highlighted once
    assert shown.count('class="rag-passage') == 1 and escape(DOC[0:150]) in out.replace("<mark>", "").replace(
        "</mark>", ""
    )
    assert "1 passage quoted" in shown
    assert "<summary>1 more passage found but not quoted</summary>" in more and "Unrelated text." in more
    # Nothing quoted: the closest passages, behind the same control.
    abstained = sources_html(Answer(text="x", passages=answer.passages, abstained=True))
    shown, _, more = abstained.partition("<details")
    assert "None of the passages found answers the question." in shown and 'class="rag-passage' not in shown
    assert "<summary>Show the 2 closest passages</summary>" in more
    # Quoted passages come in the order of the answer's quotes.
    later = _passage("Another outlet's sentence.", 0, doc_id="d5")
    two = Answer(text="x", quotes=(_quote(later.text, 0, doc_id="d5"), quote), passages=(answer.passages[0], later))
    assert sources_html(two).index("Another outlet") < sources_html(two).index("The second sentence")
    # Everything quoted: no control.
    assert "<details" not in sources_html(Answer(text="x", quotes=(quote,), passages=(_doc_passage(0, 117),)))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("article.txt", "article.txt"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\Windows\\evil.MD", "evil.md"),
        ("/abs/path/report.PDF", "report.pdf"),
        ("a;rm -rf $(x) `y` |z&.html", "a_rm_-rf_x_y_z.html"),
        (".hidden.txt", "hidden.txt"),
        ("...txt", "upload.txt"),
        ("new <script>.txt", "new_script.txt"),
        ("name\x00with\nnul.md", "name_with_nul.md"),
        ("über nachrichten.txt", "über_nachrichten.txt"),
        ("a..b.txt", "a.b.txt"),
        ("x" * 300 + ".txt", "x" * 100 + ".txt"),
    ],
)
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


@pytest.mark.parametrize("name", ["README", "dir/", ""])
def test_safe_filename_needs_a_suffix(name: str) -> None:
    with pytest.raises(ValueError):
        safe_filename(name)


def test_unique_destination_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"one")
    assert unique_destination(tmp_path, "a.txt", b"one") == (tmp_path / "a.txt", True)
    assert unique_destination(tmp_path, "a.txt", b"two") == (tmp_path / "a-1.txt", False)
    (tmp_path / "a-1.txt").write_bytes(b"three")
    assert unique_destination(tmp_path, "a.txt", b"two") == (tmp_path / "a-2.txt", False)
    assert unique_destination(tmp_path, "b.txt", b"two") == (tmp_path / "b.txt", False)


# ---------------------------------------------------------------------------------------------
# Fixtures: a small index and the app serving it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _make_index(root: Path) -> tuple[Path, Path]:
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    for path in sorted((ROOT / "corpus").glob("*.txt")):
        shutil.copy(path, corpus / path.name)
    index_dir = root / "index"
    build_index([corpus], index_dir, embedder=HashEmbedder())
    return corpus, index_dir


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    corpus, index_dir = _make_index(tmp_path_factory.mktemp("chat"))
    uploads = corpus.parent / "uploads"
    app = build_app(index_dir, uploads_dir=uploads)
    port = _free_port()
    launch(app, "127.0.0.1", port, block=False, quiet=True)
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "corpus": corpus, "uploads": uploads, "index_dir": index_dir}
    finally:
        app.close(verbose=False)


def _client(served: dict[str, Any]) -> Any:
    return gradio_client.Client(served["url"], verbose=False, download_files=False, analytics_enabled=False)


def _text(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


ALL = ["All Israel News", "JNS", "The Jerusalem Post", "The Times of Israel"]


def _ask(client: Any, question: str, outlets: list[str] | None = None) -> tuple[list[dict[str, Any]], str]:
    messages, sources, box = client.predict(question, ALL if outlets is None else outlets, api_name="/ask")
    assert box == ""
    return messages, sources


def _upload(client: Any, *paths: Path) -> tuple[str, list[str]]:
    """(status HTML, the outlets ticked afterwards: those ticked before and any new ones)."""
    status, outlets, cleared = client.predict(
        [gradio_client.handle_file(str(p)) for p in paths], ALL, api_name="/upload"
    )
    assert cleared is None
    # The checkboxes come back as an update with the outlets to tick: never assumed.
    assert isinstance(outlets, dict) and isinstance(outlets.get("value"), list), outlets
    return str(status), list(outlets["value"])


# ---------------------------------------------------------------------------------------------
# The app through its API


def test_api_names(served: dict[str, Any]) -> None:
    info = _client(served).view_api(print_info=False, return_format="dict")
    assert {"/ask", "/clear", "/upload"} <= set(info["named_endpoints"])


def test_ask_shows_the_outlets_quotes(served: dict[str, Any]) -> None:
    question = "Who led the American side in the virtual meeting?"
    expected = ask(question, index_dir=served["index_dir"])
    assert expected.quotes and not expected.abstained
    messages, sources = _ask(_client(served), question)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert _text(messages[-1]) == expected.text
    assert f"**{expected.quotes[0].outlet}**" in _text(messages[-1])
    assert "Jake Sullivan" in _text(messages[-1])
    shown, _, more = sources.partition("<details")
    marked = re.findall(r"<mark>(.*?)</mark>", shown, flags=re.S)
    for quote in expected.quotes:  # each quote is highlighted in its passage, not merely shown
        assert any(html.escape(quote.text) in m for m in marked), quote.text
    for m in marked:  # ...and nothing else is
        for quote in expected.quotes:
            m = m.replace(html.escape(quote.text), "")
        assert not m.strip(), m
    assert 'class="rag-outlet">JNS<' in shown
    # Quoted passages are shown, merged where they overlap; the rest wait behind "more passages".
    merged = merge_passages(expected.passages)
    quoted = [p for p in merged if quote_spans(p, expected.quotes)]
    assert shown.count('class="rag-passage') == len(quoted) > 0
    assert more.count('class="rag-passage') == len(merged) - len(quoted) > 0
    assert "<mark>" not in more and "more passages found but not quoted</summary>" in more


def test_follow_up_passes_earlier_questions_as_history(served: dict[str, Any]) -> None:
    client = _client(served)
    first = "Who led the American side in the virtual meeting?"
    second = "And who represented the Israeli side?"
    _ask(client, first)
    messages, _ = _ask(client, second)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert _text(messages[-1]) == ask(second, history=(first,), index_dir=served["index_dir"]).text
    client.predict(api_name="/clear")
    messages, _ = _ask(client, second)
    assert len(messages) == 2
    assert _text(messages[-1]) == ask(second, index_dir=served["index_dir"]).text


def test_outlet_filter(served: dict[str, Any]) -> None:
    client = _client(served)
    question = "How many Hamas fighters are in Rafah?"
    _, sources = _ask(client, question, ["The Times of Israel"])
    assert 'class="rag-outlet">The Times of Israel<' in sources
    assert 'class="rag-outlet">JNS<' not in sources
    messages, sources = _ask(client, question, [])
    assert _text(messages[-1]) == NO_OUTLET_TEXT
    assert "appear here" in sources


def test_empty_question_gets_a_friendly_message(served: dict[str, Any]) -> None:
    messages, _ = _ask(_client(served), "   ")
    assert [m["role"] for m in messages] == ["assistant"]
    assert _text(messages[-1]) == EMPTY_QUESTION_TEXT


def test_rag_error_is_one_line_in_the_chat(served: dict[str, Any]) -> None:
    messages, _ = _ask(_client(served), "?!?")  # nothing to search for: QueryError
    reply = _text(messages[-1])
    assert reply.startswith("⚠️") and "\n" not in reply and "Traceback" not in reply
    page = ChatPage(index_dir=served["index_dir"], uploads_dir=served["corpus"])
    messages2, _, _, _ = page.respond("Who led the talks?", ["No Such Outlet"], None)
    assert _text(messages2[-1]).startswith("⚠️") and "no outlet called" in _text(messages2[-1])
    assert "\n" not in _text(messages2[-1])


def test_question_is_shown_with_a_working_indicator_before_the_answer(served: dict[str, Any]) -> None:
    page = ChatPage(index_dir=served["index_dir"], uploads_dir=served["uploads"])
    question = "Who led the <American> side in the virtual meeting?"
    steps = page.turn(question, None, None)
    messages, panel, box, conversation = next(steps)
    assert messages == [
        {"role": "user", "content": md_literal(question)},
        {"role": "assistant", "content": SEARCHING_TEXT},
    ]
    assert box == "" and "Looking for the passages" in panel
    assert conversation == {"messages": [], "questions": []}  # nothing is answered yet
    assert next(steps) == page.respond(question, None, None)
    assert next(steps, None) is None
    # An empty question needs no indicator: one step, the friendly message.
    (only,) = page.turn("  ", None, None)
    assert [m["content"] for m in only[0]] == [EMPTY_QUESTION_TEXT]


def test_ask_endpoint_without_outlets_searches_them_all(served: dict[str, Any]) -> None:
    question = "Who led the American side in the virtual meeting?"
    messages, _, box = _client(served).predict(question, None, api_name="/ask")
    assert box == "" and _text(messages[-1]) == ask(question, index_dir=served["index_dir"]).text
    messages, _, _ = _client(served).predict(question, ["No Such Outlet"], api_name="/ask")
    reply = _text(messages[-1])
    assert reply.startswith("⚠️") and "no outlet called" in reply and "\n" not in reply


def test_ask_endpoint_takes_an_outlet_added_after_the_client_connected(served: dict[str, Any], tmp_path: Path) -> None:
    early = _client(served)  # knows the outlets as they were
    article = tmp_path / "harbour.txt"
    article.write_text(
        "Title: Cranes arrive at the harbour\nOutlet: The Harbour Gazette\n\n"
        "Three gantry cranes taller than 90 metres arrived at the Ashdod harbour on Sunday.\n",
        encoding="utf-8",
    )
    status, outlets = _upload(_client(served), article)
    assert "Added" in status and "The Harbour Gazette" in outlets, status
    messages, sources = _ask(early, "How many gantry cranes arrived at the harbour?", ["The Harbour Gazette"])
    assert "**The Harbour Gazette**" in _text(messages[-1]) and "Three gantry cranes" in _text(messages[-1])
    assert "The Harbour Gazette" in sources


def test_uploads_leave_no_copy_in_gradios_upload_cache(served: dict[str, Any], tmp_path: Path) -> None:
    from gradio.utils import get_upload_folder

    tag = f"cachecheck{os.getpid()}"
    article = tmp_path / f"{tag}.txt"
    article.write_text(
        "Title: A library reopens\nOutlet: The Reading Room\n\nThe city library reopened with 12,000 new books.\n",
        encoding="utf-8",
    )
    junk = tmp_path / f"{tag}-junk.txt"
    junk.write_bytes(b"")
    status, _ = _upload(_client(served), article, junk)
    assert "Added" in status and "Rejected" in status, status
    assert [p.name for p in served["uploads"].glob(f"{tag}*")] == [f"{tag}.txt"]
    assert list(Path(get_upload_folder()).rglob(f"{tag}*")) == []  # neither the kept nor the rejected file
    assert article.exists() and junk.exists()  # the caller's own files are never deleted


def test_question_is_escaped_in_the_chat(served: dict[str, Any]) -> None:
    messages, _ = _ask(_client(served), "<img src=x onerror=alert(1)> who led the talks?")
    assert "<img" not in _text(messages[0]) and "&lt;img" in _text(messages[0])


def test_upload_makes_a_new_article_answerable(served: dict[str, Any], tmp_path: Path) -> None:
    client = _client(served)
    question = "How many photovoltaic panels were installed at the crossing?"
    before, _ = _ask(client, question)
    assert "4,200" not in _text(before[-1])
    upload = tmp_path / "solar plant (draft); v2.txt"
    upload.write_text(NEW_ARTICLE, encoding="utf-8")
    status, outlets = _upload(client, upload)
    assert "Added" in status and "The Desert Courier" in status, status
    assert set(outlets) == {*ALL, "The Desert Courier"}  # the new outlet is ticked
    saved = [p.name for p in served["uploads"].iterdir() if "solar" in p.name]
    assert len(saved) == 1 and all(c not in saved[0] for c in " ;()"), saved
    assert not [p for p in served["corpus"].iterdir() if "solar" in p.name]  # the corpus is not touched
    messages, sources = _ask(client, question, outlets)
    assert "4,200 photovoltaic panels" in _text(messages[-1])
    assert "**The Desert Courier**" in _text(messages[-1])
    assert "<mark>Engineers installed 4,200 photovoltaic panels" in sources
    # The same file again is recognised, not saved twice.
    status, _ = _upload(client, upload)
    assert "Already there" in status and "already in the index" in status
    assert len([p for p in served["uploads"].iterdir() if "solar" in p.name]) == 1


def test_malformed_uploads_are_rejected_and_change_nothing(served: dict[str, Any], tmp_path: Path) -> None:
    client = _client(served)
    question = "How many Hamas fighters are in Rafah?"
    _, sources_before = _ask(client, question)
    answer_before = ask(question, index_dir=served["index_dir"])
    manifest_before = (served["index_dir"] / MANIFEST).read_bytes()
    files_before = sorted(p.name for p in served["uploads"].glob("*"))

    junk = tmp_path / "junk.txt"
    junk.write_bytes(bytes(range(256)) * 40 + os.urandom(2048))
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    fake_pdf = tmp_path / "broken.pdf"
    fake_pdf.write_bytes(b"%PDF-1.7\n this is not really a pdf")
    renamed = tmp_path / "photo.pdf"
    renamed.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(512))
    status, outlets = _upload(client, junk, empty, fake_pdf, renamed)
    assert outlets == ALL
    assert "Rejected" in status and "Added" not in status
    assert "junk.txt: not a text file (binary content)" in status
    assert "empty.txt: file is empty" in status
    # What is wrong, in plain words: not the PDF library's exception name.
    assert "broken.pdf: cannot read PDF: the file is damaged or incomplete" in status
    assert "photo.pdf: cannot read PDF: the file is not a PDF" in status
    assert "Error" not in status

    assert sorted(p.name for p in served["uploads"].glob("*")) == files_before
    assert (served["index_dir"] / MANIFEST).read_bytes() == manifest_before
    client.predict(api_name="/clear")  # the same question again, not as a follow-up
    messages, sources_after = _ask(client, question)
    assert _text(messages[-1]) == answer_before.text
    assert sources_after == sources_before


def test_article_with_markup_is_shown_as_text(served: dict[str, Any], tmp_path: Path) -> None:
    client = _client(served)
    upload = tmp_path / "zebra.txt"
    upload.write_text(ZEBRA_ARTICLE, encoding="utf-8")
    status, outlets = _upload(client, upload)
    assert "Added" in status and XSS_OUTLET in outlets
    assert "<script" not in status and "<img" not in status
    assert html.escape(XSS_OUTLET, quote=True) in status

    messages, sources = _ask(client, "How many zebra-striped quarantine tents did the ministry order?", outlets)
    reply = _text(messages[-1])
    assert "17,000 zebra-striped quarantine tents" in reply
    assert "<script" not in reply and "<img" not in reply
    assert "<script" not in sources and "<img" not in sources
    assert "&lt;script&gt;alert(&#x27;body&#x27;)&lt;/script&gt;" in sources
    assert html.escape(XSS_TITLE, quote=True) in sources
    assert html.escape(XSS_OUTLET, quote=True) in sources
    assert "2 Apr 2024" in sources


def test_add_files_limits_and_names(tmp_path: Path) -> None:
    corpus, index_dir = _make_index(tmp_path)
    manifest_before = (index_dir / MANIFEST).read_bytes()
    big = tmp_path / "big.txt"
    big.write_text(NEW_ARTICLE * 20, encoding="utf-8")
    result = add_files([big], index_dir, corpus, max_bytes=1000)
    assert result.rejected and "over the" in result.rejected[0] and not result.added
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ")
    result = add_files([exe], index_dir, corpus)
    assert "unsupported file type" in result.rejected[0]
    assert (index_dir / MANIFEST).read_bytes() == manifest_before

    odd = tmp_path / "we$ird;name`x`.txt"
    odd.write_text(NEW_ARTICLE, encoding="utf-8")
    clash = corpus / "we_ird_name_x.txt"
    clash.write_text("Title: Other\nOutlet: JNS\n\nA different article that was here first.\n", encoding="utf-8")
    result = add_files([odd], index_dir, corpus)
    assert result.added and not result.rejected, result
    assert (corpus / "we_ird_name_x-1.txt").read_text(encoding="utf-8") == NEW_ARTICLE
    assert clash.read_text(encoding="utf-8").startswith("Title: Other")  # not overwritten
    assert "saved as we_ird_name_x-1.txt" in result.html()


def test_upload_refuses_when_a_recorded_source_is_gone(tmp_path: Path) -> None:
    corpus, index_dir = _make_index(tmp_path / "a")
    moved = tmp_path / "moved"
    corpus.rename(moved)
    sources_dir = tmp_path / "uploads"
    upload = tmp_path / "solar.txt"
    upload.write_text(NEW_ARTICLE, encoding="utf-8")
    result = add_files([upload], index_dir, sources_dir)
    assert "is not there" in result.error and not result.added
    assert list(sources_dir.iterdir()) == []  # nothing left behind


def test_upload_without_outlet_is_filed_under_its_name(tmp_path: Path) -> None:
    corpus, index_dir = _make_index(tmp_path)
    upload = tmp_path / "harbour notes.md"
    upload.write_text("A ferry carried 310 passengers across the harbour on Sunday.\n", encoding="utf-8")
    result = add_files([upload], index_dir, corpus)
    assert len(result.added) == 1, result
    assert "harbour_notes" in result.added[0] and "no outlet declared" in result.added[0]
    assert "**harbour\\_notes**" in ask("How many passengers did the ferry carry?", index_dir=index_dir).text
    again = add_files([upload], index_dir, corpus)  # the same bytes again: recognised, not re-added
    assert not again.added and "already" in again.unchanged[0]


def test_uploads_folder_becomes_a_source_that_rag_index_keeps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus, index_dir = _make_index(tmp_path)
    uploads = tmp_path / "uploads"
    article = tmp_path / "solar.txt"
    article.write_text(NEW_ARTICLE, encoding="utf-8")
    assert add_files([article], index_dir, uploads).added
    assert [p.name for p in uploads.iterdir()] == ["solar.txt"]
    assert read_manifest(index_dir).settings["sources"] == [str(corpus), str(uploads)]
    # `rag index` with no paths updates from the recorded sources: the upload stays, and a file
    # put in the uploads folder by hand is picked up too.
    (uploads / "harbour.txt").write_text(
        "Title: Ferry\nOutlet: The Harbour Gazette\n\nA ferry carried 310 passengers on Sunday.\n", encoding="utf-8"
    )
    capsys.readouterr()
    assert rag_main(["index", "--index-dir", str(index_dir), "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["removed"] == [] and report["added"] == [str(uploads / "harbour.txt")]
    assert "**The Desert Courier**" in ask("How many photovoltaic panels were installed?", index_dir=index_dir).text


def _start_serve(clone: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`rag serve` in the clone, with this checkout's code and the default folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(PYTHONPATH=str(ROOT), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "serve", "--port", str(port)],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _connect(url: str, server: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> Any:
    """A client once the server answers (it loads the index first)."""
    deadline = time.monotonic() + timeout
    while True:
        assert server.poll() is None, log.read_text(encoding="utf-8", errors="replace")
        try:
            return gradio_client.Client(url, verbose=False, download_files=False, analytics_enabled=False)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)  # polling for the server to come up, not hiding a race


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_upload_stays_out_of_git_status_and_survives_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clone, `rag serve` in it with the default folders, a file added on the page: `git status`
    stays clean, and after a restart the article is still saved, indexed and answered from."""
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    monkeypatch.chdir(clone)
    build_index(["corpus"], "index", embedder=HashEmbedder())  # the fast model: recorded in the index
    article = tmp_path / "solar plant.txt"
    article.write_text(NEW_ARTICLE, encoding="utf-8")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log = tmp_path / "serve.log"
    question = "How many photovoltaic panels were installed at the crossing?"

    server = _start_serve(clone, port, log)
    try:
        client = _connect(url, server, log)
        status, _, _ = client.predict([gradio_client.handle_file(str(article))], None, api_name="/upload")
        assert "Added" in status, status
    finally:
        _stop(server)
    assert (clone / "uploads" / "solar_plant.txt").read_text(encoding="utf-8") == NEW_ARTICLE
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=clone, capture_output=True, text=True, check=True
    )
    assert status.stdout == "", status.stdout

    server = _start_serve(clone, port, log)
    try:
        messages, _, _ = _connect(url, server, log).predict(question, None, api_name="/ask")
        assert "4,200 photovoltaic panels" in _text(messages[-1]) and "**The Desert Courier**" in _text(messages[-1])
    finally:
        _stop(server)


def test_rag_serve_takes_the_uploads_folder_from_the_flag_or_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import rag.chat

    served: list[Path] = []
    monkeypatch.setattr(rag.chat, "serve", lambda **kwargs: served.append(kwargs["uploads_dir"]))
    monkeypatch.delenv("RAG_UPLOADS_DIR", raising=False)
    assert rag_main(["serve"]) == 0
    monkeypatch.setenv("RAG_UPLOADS_DIR", str(tmp_path / "from-env"))
    assert rag_main(["serve"]) == 0
    assert rag_main(["serve", "--uploads-dir", str(tmp_path / "from-flag")]) == 0
    assert served == [Path("uploads"), tmp_path / "from-env", tmp_path / "from-flag"]
