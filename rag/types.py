"""Frozen dataclasses that flow between the stages: Document -> Chunk -> Passage -> Quote -> Answer."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """A half-open character range [start, end) of a document's text."""

    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """One article. `text` is the text every offset points into: for a .txt/.md file in UTF-8 the whole
    file as `Path(source).read_text(encoding="utf-8")` returns it, header block included; for other
    encodings the decoded file text; for HTML and PDF the extracted text. The article starts at `body_start`."""

    doc_id: str  # content hash: the same article under two names is one document
    source: str  # path of the file it came from
    text: str
    outlet: str
    title: str = ""
    author: str = ""
    date: str = ""
    url: str = ""
    # (offset in text, 1-based page number) for each page start of a PDF; empty otherwise
    pages: tuple[tuple[int, int], ...] = ()
    warnings: tuple[str, ...] = ()
    body_start: int = 0  # where the article starts in `text`, after a metadata header block

    @property
    def body(self) -> str:
        return self.text[self.body_start :]

    def page_at(self, offset: int) -> int | None:
        page = None
        for start, number in self.pages:
            if start <= offset:
                page = number
            else:
                break
        return page


@dataclass(frozen=True)
class Chunk:
    """A contiguous piece of a document: `text == document.text[start:end]`."""

    doc_id: str
    index: int
    start: int
    end: int
    text: str
    page: int | None = None


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its attribution."""

    text: str
    outlet: str
    title: str
    source: str
    score: float
    start: int
    end: int
    doc_id: str = ""
    chunk_id: str = ""  # "<doc_id>:<position>": the same article gives the same ids in every build
    page: int | None = None
    date: str | None = None  # the article's publication day, ISO; None when it has none
    url: str = ""
    author: str = ""


@dataclass(frozen=True)
class Quote:
    """A verbatim sentence (or run of sentences) of a source's document text."""

    text: str
    outlet: str
    title: str
    source: str
    start: int
    end: int
    doc_id: str = ""
    score: float = 0.0  # probability that the sentence answers the question
    # The sentence before, when the quote opens with a reference ("He", "Such a plan"): verbatim too.
    context: str = ""
    context_start: int = -1
    date: str | None = None  # the article's publication day, ISO; None when it has none


@dataclass(frozen=True)
class Answer:
    text: str
    quotes: tuple[Quote, ...] = ()
    passages: tuple[Passage, ...] = ()
    abstained: bool = False
    # outlets that reported the same fact, and figures that differ, for the UI
    notes: tuple[str, ...] = field(default_factory=tuple)
    # the publication window the articles were taken from ("Articles from 26 Aug to 2 Sep 2022"), or ""
    window: str = ""
