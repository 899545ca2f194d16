"""rag.chunk: property tests over generated articles, and the real tokenizer's limit on the seeds."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.chunk import ChunkSettings, chunk_document, word_count
from rag.clean import clean_spans
from rag.ingest import read_document
from rag.sentences import sentence_spans
from rag.types import Chunk, Document

SEEDS = Path(__file__).parent / "data" / "seeds"


def subword_count(text: str) -> int:
    """A WordPiece-like counter: long words cost several tokens, punctuation one each."""
    return sum(math.ceil(len(t) / 4) for t in re.findall(r"\w+|[^\w\s]", text))


COUNTERS: dict[str, Callable[[str], int]] = {"words": word_count, "subwords": subword_count}

# --- a generator of news-like article texts ----------------------------------------------------

WORDS = st.sampled_from(
    [
        "Rafah",
        "Hamas",
        "the",
        "officials",
        "said",
        "U.S.",
        "Gen.",
        "Dr.",
        "Q.",
        "p.m.",
        "e.g.",
        "3,000",
        "1.3",
        "million",
        "Israel’s",
        "“we",
        "know”",
        "(AFP)",
        "—",
        "Jean-Pierre",
        "no.",
        "deal.A",
        "Netanyahu",
        "hostages",
        "134",
        "https://example.com/a/b?c=d&e=f",
    ]
)
FREE_WORD = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,'\"-éש", min_size=1, max_size=14
)
SENTENCE = st.builds(
    lambda words, end: " ".join(words) + end,
    st.lists(st.one_of(WORDS, FREE_WORD), min_size=1, max_size=30),
    st.sampled_from([".", ".", "?", "!", ".”", "", "..."]),
)
PARAGRAPH = st.builds(
    lambda sentences, glue: glue.join(sentences),
    st.lists(SENTENCE, min_size=1, max_size=6),
    st.sampled_from([" ", " ", "  ", ""]),
)
LONG_WORD = st.builds(lambda n, ch: ch * n, st.integers(50, 400), st.sampled_from(["x", "-", "a.", "ab,"]))
BOILERPLATE = st.sampled_from(
    ["Most Popular", "read more:", "Comments are closed.", "Register to receive full access to JNS.", "Advertisement"]
)
CAPTION = "Palestinians walk next to the border fence in Rafah, southern Gaza Strip, March 24, 2024. (AP/Fatima Shbair)"
LINE = st.one_of(
    PARAGRAPH,
    PARAGRAPH,
    PARAGRAPH,
    BOILERPLATE,
    st.just(CAPTION),
    st.builds(lambda w: f"Sullivan said {w} was the word.", LONG_WORD),
    st.just("newsU.S.-Israel Relations"),
)
ARTICLE = st.builds(
    lambda lines, seps: "".join(line + sep for line, sep in zip(lines, seps, strict=False)),
    st.lists(LINE, min_size=1, max_size=14),
    st.lists(st.sampled_from(["\n\n", "\n", "\n \n", "\r\n\r\n"]), min_size=14, max_size=14),
)
CHUNK_SETTINGS = st.builds(
    ChunkSettings,
    max_tokens=st.integers(1, 200),
    overlap_sentences=st.integers(0, 3),
    min_tokens=st.integers(0, 120),
)
BUDGET = st.one_of(st.none(), st.integers(-5, 300))


def make_doc(text: str) -> Document:
    return Document(doc_id="d1", source="mem.txt", text=text, outlet="JNS", title="t")


def limit_of(chunk_settings: ChunkSettings, budget: int | None) -> int:
    return max(8, min(chunk_settings.max_tokens, budget if budget is not None else chunk_settings.max_tokens))


def check_chunks(text: str, chunks: list[Chunk], count: Callable[[str], int], limit: int) -> None:
    kept = clean_spans(text)
    # verbatim slices, numbered in order
    for i, chunk in enumerate(chunks):
        assert chunk.index == i
        assert chunk.doc_id == "d1"
        assert 0 <= chunk.start < chunk.end <= len(text)
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip()
        assert count(chunk.text) <= limit, (count(chunk.text), limit, chunk.text)
    # in order: each chunk moves forward and adds text of its own
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.start < b.start  # not <=: a chunk inside the next one would be a wasted duplicate
        assert a.end < b.end
    # nothing from outside the kept spans, except the whitespace between them
    for chunk in chunks:
        for pos in range(chunk.start, chunk.end):
            if not text[pos].isspace():
                assert any(s.start <= pos < s.end for s in kept), (pos, text[pos], chunk.text)
    # every sentence of the kept text is in a chunk: whole when it fits the limit, else covered
    for span in kept:
        for sentence in sentence_spans(text, span.start, span.end):
            if count(text[sentence.start : sentence.end]) <= limit:
                assert any(c.start <= sentence.start and sentence.end <= c.end for c in chunks), text[
                    sentence.start : sentence.end
                ]
            else:
                for pos in range(sentence.start, sentence.end):
                    if not text[pos].isspace():
                        assert any(c.start <= pos < c.end for c in chunks), (pos, text[sentence.start : sentence.end])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=ARTICLE, chunk_settings=CHUNK_SETTINGS, budget=BUDGET, counter=st.sampled_from(sorted(COUNTERS)))
def test_chunk_properties(text: str, chunk_settings: ChunkSettings, budget: int | None, counter: str) -> None:
    count = COUNTERS[counter]
    chunks = chunk_document(make_doc(text), chunk_settings, count, budget=budget)
    check_chunks(text, chunks, count, limit_of(chunk_settings, budget))


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=600), chunk_settings=CHUNK_SETTINGS)
def test_chunk_properties_on_arbitrary_text(text: str, chunk_settings: ChunkSettings) -> None:
    chunks = chunk_document(make_doc(text), chunk_settings, word_count)
    check_chunks(text, chunks, word_count, limit_of(chunk_settings, None))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=ARTICLE, chunk_settings=CHUNK_SETTINGS, data=st.data())
def test_chunks_stay_within_one_page(text: str, chunk_settings: ChunkSettings, data: st.DataObject) -> None:
    # Pages of a PDF start on a new line (rag.ingest joins page texts with a blank line).
    line_starts = [m.end() for m in re.finditer("\n", text) if m.end() < len(text)]
    breaks = sorted(data.draw(st.sets(st.sampled_from(line_starts), max_size=5))) if line_starts else []
    pages = tuple((start, number) for number, start in enumerate([0, *breaks], start=1))
    doc = replace(make_doc(text), pages=pages)
    chunks = chunk_document(doc, chunk_settings, word_count)
    check_chunks(text, chunks, word_count, limit_of(chunk_settings, None))
    for chunk in chunks:
        assert chunk.page == doc.page_at(chunk.start) == doc.page_at(chunk.end - 1), (pages, chunk)


@pytest.mark.parametrize("name", sorted(p.name for p in SEEDS.glob("*.txt")))
@pytest.mark.parametrize("max_tokens", [16, 60, 160])
def test_seed_chunks(name: str, max_tokens: int) -> None:
    text = (SEEDS / name).read_text(encoding="utf-8")
    chunk_settings = ChunkSettings(max_tokens=max_tokens, min_tokens=min(48, max_tokens // 2))
    chunks = chunk_document(make_doc(text), chunk_settings, word_count)
    assert chunks
    check_chunks(text, chunks, word_count, max_tokens)


def test_overlap_repeats_the_last_sentence() -> None:
    sentences = [f"Sentence number {i} says something about Rafah." for i in range(12)]
    text = " ".join(sentences)
    chunks = chunk_document(
        make_doc(text), ChunkSettings(max_tokens=30, overlap_sentences=1, min_tokens=10), word_count
    )
    assert len(chunks) > 2
    for a, b in zip(chunks, chunks[1:], strict=False):
        last_of_a = a.text[a.text.rindex("Sentence number") :]
        assert b.text.startswith(last_of_a)
    no_overlap = chunk_document(make_doc(text), ChunkSettings(max_tokens=30, overlap_sentences=0), word_count)
    for a, b in zip(no_overlap, no_overlap[1:], strict=False):
        assert a.end <= b.start


def test_paragraph_break_does_not_duplicate_a_chunk() -> None:
    """A short paragraph before a long one: breaking there and carrying the short one over as
    overlap would leave a chunk that is wholly inside the next."""
    text = "Short first paragraph of nine tokens here.\n" + " ".join(["word"] * 79) + "."
    chunks = chunk_document(
        make_doc(text), ChunkSettings(max_tokens=100, overlap_sentences=1, min_tokens=5), word_count
    )
    assert [(c.start, c.end) for c in chunks] == [(0, len(text))]


def test_second_copy_of_a_caption_never_inside_a_chunk() -> None:
    caption = "Palestinians walk next to the border fence in Rafah, southern Gaza Strip, on March 24, 2024. (AFP)"
    text = f"The sides met.\n{caption}\n{caption}\nThe talks went on.\n"
    chunks = chunk_document(make_doc(text), ChunkSettings(), word_count)
    assert [c.text for c in chunks] == [f"The sides met.\n{caption}", "The talks went on."]
    second = text.rindex(caption)
    assert not any(c.start <= second < c.end for c in chunks)


def test_pdf_chunks_carry_page_numbers() -> None:
    text = "Page one sentence.\n\nPage two sentence."
    doc = replace(make_doc(text), pages=((0, 1), (text.index("Page two"), 2)))
    chunks = chunk_document(doc, ChunkSettings(max_tokens=8, overlap_sentences=0), word_count)
    assert [(c.text, c.page) for c in chunks] == [("Page one sentence.", 1), ("Page two sentence.", 2)]


def test_empty_document_has_no_chunks() -> None:
    assert chunk_document(make_doc("\n\n  \n"), ChunkSettings(), word_count) == []


@pytest.mark.slow
def test_seed_chunks_fit_the_real_model(tmp_path: Path) -> None:
    """Every chunk's title-prefixed embedding text fits all-MiniLM-L6-v2's max_seq_length, special
    tokens included: sentence-transformers would silently cut anything longer."""
    from rag.embed import load_embedder
    from rag.index import BuildSettings, chunk_for_model, embedding_text

    embedder = load_embedder()
    tokenizer = getattr(getattr(embedder, "model", None), "tokenizer", None)

    def model_tokens(text: str) -> int:
        if tokenizer is not None:
            return len(tokenizer(text, truncation=False, verbose=False)["input_ids"])
        return embedder.count_tokens(text) + embedder.special_tokens()

    long_title = "Washington says Israel will consider US humanitarian concerns ahead of a Rafah operation " * 3
    checked = longest = 0
    for seed in sorted(SEEDS.glob("*.txt")):
        plain = tmp_path / seed.name
        plain.write_bytes(seed.read_bytes())
        titled = tmp_path / f"titled-{seed.name}"
        titled.write_text(f"Title: {long_title.strip()}\n\n" + seed.read_text(encoding="utf-8"), encoding="utf-8")
        for path in (plain, titled):
            doc = read_document(path)
            # The default settings, and chunks as long as the model allows: there the budget binds.
            for build in (BuildSettings(), BuildSettings(chunk=ChunkSettings(max_tokens=10_000))):
                chunks = chunk_for_model(doc, build, embedder)
                assert chunks
                for chunk in chunks:
                    assert doc.text[chunk.start : chunk.end] == chunk.text
                    tokens = model_tokens(embedding_text(chunk, doc, build.title_prefix))
                    assert tokens <= embedder.max_seq_length, (path.name, chunk.index, tokens)
                    longest = max(longest, tokens)
                    checked += 1
    assert checked > 20
    assert longest > embedder.max_seq_length - 40  # the long-chunk settings really went near the limit
