"""Fuzzing the text pipeline: random and mangled input never breaks it, and offsets always map back.

FUZZ_EXAMPLES sets the number of examples per property (default 50, so the suite stays fast;
`make fuzz` runs 20000)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_ingest import NEWS_PAGE, make_pdf

from rag.chunk import ChunkSettings, chunk_document, word_count
from rag.clean import clean_spans
from rag.errors import IngestError
from rag.ingest import _HEADER_KEYS, decode_text, parse_header, read_document
from rag.sentences import sentence_spans
from rag.types import Document

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
FIELDS = set(_HEADER_KEYS.values())

# Text with the characters that matter to the pipeline: newlines, CR, quotes, periods, colons,
# dashes, header keys, control characters, surrogates-free unicode.
HEADERISH = st.sampled_from(
    [
        "Title: ",
        "Source: ",
        "Outlet:",
        "Date: 2024-04-01",
        "URL: x",
        "Author: ",
        "---\n",
        "\n---\n",
        "title: [",
        ": ",
        "- ",
    ]
)
TEXT_PIECES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "\n",
            "\n\n",
            "\r\n",
            ". ",
            ".A ",
            "“",
            "”",
            "Gen. ",
            "U.S. ",
            "Most Popular\n",
            "read more:\n",
            "Comments are closed.\n",
            "newsU.S.-Israel Relations\n",
            "Inside story'This ",
            "Register to receive full access to JNS.\n",
            "Jacob Magid is The Times of Israel's US bureau chief\n",
            "x" * 300,
            "\x00",
            "\x07",
            "\ufeff",
            "\u2028",
            "\x85",
        ]
    ),
    HEADERISH,
)
DOC_TEXT = st.lists(TEXT_PIECES, max_size=30).map("".join)


def tmp_file(suffix: str, data: bytes) -> Path:
    handle, name = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    return Path(name)


# --- clean, sentences, chunks ------------------------------------------------------------------


@FUZZ
@given(text=st.one_of(DOC_TEXT, st.text()))
@example(text="")
@example(text="\n\n\n")
@example(text="newsU.S.-Israel Relations")
def test_clean_and_sentence_spans_map_back(text: str) -> None:
    spans = clean_spans(text)
    previous_end = 0
    for span in spans:
        assert previous_end <= span.start < span.end <= len(text)
        piece = text[span.start : span.end]
        assert piece.strip() == piece
        previous_end = span.end
        for sentence in sentence_spans(text, span.start, span.end):
            assert span.start <= sentence.start < sentence.end <= span.end
            assert text[sentence.start : sentence.end].strip() == text[sentence.start : sentence.end]


@FUZZ
@given(
    text=st.one_of(DOC_TEXT, st.text()),
    max_tokens=st.integers(1, 120),
    overlap=st.integers(0, 3),
    min_tokens=st.integers(0, 80),
    budget=st.one_of(st.none(), st.integers(-10, 200)),
    page_breaks=st.lists(st.integers(0, 2000), max_size=4),
)
def test_chunks_map_back(
    text: str, max_tokens: int, overlap: int, min_tokens: int, budget: int | None, page_breaks: list[int]
) -> None:
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    starts = sorted({line_starts[b % len(line_starts)] for b in page_breaks} | {0})
    doc = Document(
        doc_id="d",
        source="f.txt",
        text=text,
        outlet="o",
        pages=tuple((s, n) for n, s in enumerate(starts, 1)),
    )
    chunk_settings = ChunkSettings(max_tokens=max_tokens, overlap_sentences=overlap, min_tokens=min_tokens)
    limit = max(8, min(max_tokens, budget if budget is not None else max_tokens))
    chunks = chunk_document(doc, chunk_settings, word_count, budget=budget)
    for i, chunk in enumerate(chunks):
        assert chunk.index == i
        assert 0 <= chunk.start < chunk.end <= len(text)
        assert text[chunk.start : chunk.end] == chunk.text
        assert word_count(chunk.text) <= limit
        assert chunk.page == doc.page_at(chunk.start) == doc.page_at(chunk.end - 1)
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.start < b.start and a.end < b.end


# --- header parsing ----------------------------------------------------------------------------


@FUZZ
@given(text=st.one_of(DOC_TEXT, st.lists(st.one_of(HEADERISH, st.text(max_size=15)), max_size=12).map("".join)))
@example(text="---\n[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n---\nbody")
@example(text="---\n!!python/object:os.system ls\n---\nbody")
@example(text="---\ntitle: &a [*a]\n---\nbody")
@example(text="---\n" + "- " * 3000 + "x\n---\nbody")
@example(text="Title: a\n\n")
@example(text="---\ndate: 2024-02-30\n---\nbody")
@example(text="---\na: !!timestamp 99999-01-01\n---\nbody")
@example(text="---\na: !!float abc\n---\nbody")
def test_parse_header_never_fails(text: str) -> None:
    meta, body_start = parse_header(text)
    assert 0 <= body_start <= len(text)
    assert set(meta) <= FIELDS
    assert all(isinstance(v, str) for v in meta.values())
    if not meta:
        assert body_start == 0 or text.startswith("---")


# --- reading files -----------------------------------------------------------------------------


def check_document(doc: Document, path: Path) -> None:
    assert doc.text.strip()
    assert doc.outlet
    assert doc.source == str(path)
    offsets = [start for start, _ in doc.pages]
    assert offsets == sorted(offsets)
    assert all(0 <= start <= len(doc.text) for start in offsets)
    for chunk in chunk_document(doc, ChunkSettings(max_tokens=40), word_count):
        assert doc.text[chunk.start : chunk.end] == chunk.text


def read_or_reject(suffix: str, data: bytes) -> None:
    path = tmp_file(suffix, data)
    try:
        try:
            doc = read_document(path)
        except IngestError as error:  # the only exception allowed out
            message = str(error)
            assert message.startswith(f"{path}: ") and "\n" not in message
            return
        check_document(doc, path)
    finally:
        path.unlink()


_PDF = make_pdf(
    [["Top officials held a virtual meeting on Monday.", "The US side raised concerns."], ["Page two (134)."]],
    info={"Title": "Rafah", "Outlet": "JNS"},
)


@st.composite
def mangled(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(max_size=20))
        elif data:
            del data[position : position + draw(st.integers(1, 50))]
    return bytes(data)


@FUZZ
@given(suffix=st.sampled_from([".txt", ".md", ".html", ".pdf"]), data=st.binary(max_size=3000))
@example(suffix=".txt", data=b"\xff\xfe")
@example(suffix=".txt", data=b"\xfe\xff\x00")
@example(suffix=".pdf", data=b"%PDF-1.4\n")
@example(suffix=".html", data=b"<html")
def test_random_bytes_only_raise_ingest_error(suffix: str, data: bytes) -> None:
    read_or_reject(suffix, data)


@FUZZ
@given(
    suffix=st.sampled_from([".txt", ".md", ".html"]),
    text=DOC_TEXT,
    encoding=st.sampled_from(["utf-8", "utf-16", "cp1252"]),
)
def test_random_text_files_only_raise_ingest_error(suffix: str, text: str, encoding: str) -> None:
    read_or_reject(suffix, text.encode(encoding, errors="replace"))


@FUZZ
@given(data=mangled(_PDF))
def test_mangled_pdf_only_raises_ingest_error(data: bytes) -> None:
    read_or_reject(".pdf", data)


@FUZZ
@given(data=mangled(NEWS_PAGE.encode("utf-8")))
def test_mangled_html_only_raises_ingest_error(data: bytes) -> None:
    read_or_reject(".html", data)


@FUZZ
@given(data=st.binary(max_size=2000))
def test_decode_text_returns_text_or_ingest_error(data: bytes) -> None:
    try:
        text = decode_text(Path("f.txt"), data)
    except IngestError:
        return
    assert text.strip()
    assert "\r" not in text
