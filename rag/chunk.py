"""Cut a document's kept paragraphs into overlapping, sentence-aligned chunks.

Every chunk is a verbatim slice of the document text and fits the embedding model's
max_seq_length in the model's own tokens (sentence-transformers would silently cut
longer text, and what it cuts would never be found).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from rag.clean import clean_spans
from rag.sentences import sentence_spans
from rag.types import Chunk, Document, Span

TokenCounter = Callable[[str], int]  # tokens of a text, special tokens excluded


@dataclass(frozen=True)
class ChunkSettings:
    max_tokens: int = 160  # target and hard limit of a chunk, in model tokens
    overlap_sentences: int = 1  # sentences repeated at the start of the next chunk
    min_tokens: int = 48  # a paragraph break ends a chunk only once it is this long

    def as_dict(self) -> dict[str, int]:
        return {
            "max_tokens": self.max_tokens,
            "overlap_sentences": self.overlap_sentences,
            "min_tokens": self.min_tokens,
        }


def word_count(text: str) -> int:
    """A token counter for tests and models without a tokenizer."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def chunk_document(
    doc: Document,
    settings: ChunkSettings,
    count_tokens: TokenCounter,
    budget: int | None = None,
) -> list[Chunk]:
    """Chunks of the cleaned article text. `budget` caps tokens per chunk (the model's
    limit minus the title prefix and special tokens); it defaults to settings.max_tokens."""
    limit = max(8, min(settings.max_tokens, budget if budget is not None else settings.max_tokens))
    # Offsets stay those of doc.text: the body's paragraphs are shifted back by where it starts.
    base = doc.body_start
    paragraphs = [Span(s.start + base, s.end + base) for s in clean_spans(doc.text[base:])]
    units = _sentence_units(doc.text, paragraphs, count_tokens, limit)
    if doc.pages:
        # A page break ends a chunk, so that a chunk's page number is the page of all its text.
        units = [
            replace(unit, joinable=False)
            if i and doc.page_at(unit.span.start) != doc.page_at(units[i - 1].span.start)
            else unit
            for i, unit in enumerate(units)
        ]
    spans = _pack(doc.text, units, settings, limit)
    return [
        Chunk(
            doc_id=doc.doc_id,
            index=i,
            start=s.start,
            end=s.end,
            text=doc.text[s.start : s.end],
            page=doc.page_at(s.start),
        )
        for i, s in enumerate(spans)
    ]


@dataclass(frozen=True)
class _Unit:
    span: Span
    tokens: int
    paragraph: int  # index of the paragraph it belongs to
    joinable: bool  # may share a chunk with the unit before it


def _sentence_units(text: str, paragraphs: Sequence[Span], count_tokens: TokenCounter, limit: int) -> list[_Unit]:
    units: list[_Unit] = []
    previous_end: int | None = None
    for number, para in enumerate(paragraphs):
        # Paragraphs join only across whitespace: a dropped caption between them must not
        # end up inside a chunk.
        contiguous = previous_end is not None and not text[previous_end : para.start].strip()
        first = True
        for sentence in sentence_spans(text, para.start, para.end):
            for piece in _split_long(text, sentence, count_tokens, limit):
                units.append(_Unit(piece, count_tokens(text[piece.start : piece.end]), number, contiguous or not first))
                first = False
        previous_end = para.end
    return units


def _split_long(text: str, span: Span, count_tokens: TokenCounter, limit: int) -> list[Span]:
    """A sentence longer than the limit, cut at word boundaries into pieces that fit."""
    if count_tokens(text[span.start : span.end]) <= limit:
        return [span]
    words = [m.span() for m in re.finditer(r"\S+", text[span.start : span.end])]
    pieces: list[Span] = []
    begin = 0
    while begin < len(words):
        # Grow greedily, then shrink until it fits: token counts are not additive per word.
        end = begin + 1
        while (
            end < len(words) and count_tokens(text[span.start + words[begin][0] : span.start + words[end][1]]) <= limit
        ):
            end += 1
        piece = Span(span.start + words[begin][0], span.start + words[end - 1][1])
        if count_tokens(text[piece.start : piece.end]) > limit:
            pieces.extend(_split_chars(text, piece, count_tokens, limit))
        else:
            pieces.append(piece)
        begin = end
    return pieces


def _split_chars(text: str, span: Span, count_tokens: TokenCounter, limit: int) -> list[Span]:
    """Last resort for one enormous 'word' (a URL, a run of symbols)."""
    pieces = []
    start = span.start
    while start < span.end:
        end = span.end
        while end - start > 1 and count_tokens(text[start:end]) > limit:
            end = start + max(1, (end - start) // 2)
        pieces.append(Span(start, end))
        start = end
    return pieces


def _pack(text: str, units: Sequence[_Unit], settings: ChunkSettings, limit: int) -> list[Span]:
    chunks: list[Span] = []
    current: list[_Unit] = []
    size = 0

    def flush() -> None:
        if current:
            chunks.append(Span(current[0].span.start, current[-1].span.end))

    for unit in units:
        new_paragraph = bool(current) and unit.paragraph != current[-1].paragraph
        must_break = bool(current) and (not unit.joinable or size + unit.tokens > limit)
        prefer_break = new_paragraph and size >= settings.min_tokens and size + unit.tokens > limit * 0.75
        if must_break or prefer_break:
            carried = current[-settings.overlap_sentences :] if settings.overlap_sentences and unit.joinable else []
            # Overlap only while it leaves room for new text.
            while carried and sum(u.tokens for u in carried) + unit.tokens > limit // 2 + unit.tokens // 2:
                carried = carried[1:]
            while carried and sum(u.tokens for u in carried) + unit.tokens > limit:
                carried = carried[1:]
            # A preferred break that would carry the whole chunk over would only repeat it inside the next.
            if must_break or len(carried) < len(current):
                flush()
                current = list(carried)
                size = sum(u.tokens for u in current)
        current.append(unit)
        size += unit.tokens
    flush()
    return chunks
