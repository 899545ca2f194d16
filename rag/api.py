"""The public functions, with the defaults API.md promises.

This is the one library module that reads the environment: API.md makes `index_dir=None`
mean $RAG_INDEX_DIR, else ./index, built from ./corpus the first time it is needed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rag import validate
from rag.errors import IndexMissingError, QueryError
from rag.index import BuildReport, BuildSettings
from rag.index import build_index as _build_index
from rag.retrieve import Retriever, get_retriever
from rag.store import MANIFEST
from rag.types import Answer, Document, Passage

if TYPE_CHECKING:
    from rag.timeline import TimelineEntry

DEFAULT_CORPUS = "corpus"
_FIRST_BUILD = threading.Lock()


def default_index_dir() -> Path:
    return Path(os.environ.get("RAG_INDEX_DIR") or "index")


def build_index(
    sources: Sequence[str | Path] = (DEFAULT_CORPUS,),
    index_dir: str | Path | None = None,
    *,
    settings: BuildSettings | None = None,
    rebuild: bool = False,
    progress: bool = False,
) -> BuildReport:
    """Build or update the index from files and folders; see rag.index.build_index."""
    return _build_index(
        validate.sources(sources),
        validate.build_dir(index_dir if index_dir is not None else default_index_dir()),
        settings=validate.settings(settings),
        rebuild=validate.flag(rebuild, "rebuild"),
        progress=validate.flag(progress, "progress"),
    )


def retriever_for(index_dir: str | Path | None = None) -> Retriever:
    """The loaded retriever, building the default index from ./corpus if there is none yet."""
    directory = validate.path(index_dir if index_dir is not None else default_index_dir(), "index_dir")
    if not (directory / MANIFEST).exists():
        with _FIRST_BUILD:
            if not (directory / MANIFEST).exists():
                if index_dir is not None or not Path(DEFAULT_CORPUS).is_dir():
                    raise IndexMissingError(
                        f"no index in {directory}; build one with `rag index corpus --index-dir {directory}`"
                    )
                _build_index((DEFAULT_CORPUS,), directory)
    return get_retriever(directory)


def retrieve(
    query: str,
    k: int = 5,
    history: Sequence[str] = (),
    outlets: Sequence[str] | None = None,
    index_dir: str | Path | None = None,
    as_of: str | date | datetime | None = None,
    since: str | date | datetime | None = None,
    until: str | date | datetime | None = None,
) -> list[Passage]:
    """Passages for `query`, best first, each naming its outlet, headline, file and offsets.

    `as_of` is the day the question is asked (default today): nothing published after it is used;
    `since`/`until` bound the publication day. Time words in the question ("this week", "in March")
    are read against `as_of`."""
    query, k, outlets = validate.question(query), validate.k(k), validate.outlets(outlets)
    days = _days(as_of, since, until)
    return retriever_for(index_dir).search(query, k, validate.history(history), outlets, *days)


def ask(
    question: str,
    history: Sequence[str] = (),
    outlets: Sequence[str] | None = None,
    index_dir: str | Path | None = None,
    as_of: str | date | datetime | None = None,
    since: str | date | datetime | None = None,
    until: str | date | datetime | None = None,
) -> Answer:
    """Answer `question` with verbatim quotes from the outlets, or abstain; dates as for retrieve()."""
    from rag.answer import answer_question

    question, outlets = validate.question(question), validate.outlets(outlets)
    days = _days(as_of, since, until)
    retriever = retriever_for(index_dir)
    q = retriever.analyse(question, validate.history(history), outlets, *days)
    return answer_question(retriever, q)


def timeline(answer: Answer) -> str:
    """The answer's quotes ordered by their articles' publication day, as markdown: who reported
    what, and when ("" when it quotes nothing)."""
    from rag.timeline import timeline_markdown

    return timeline_markdown(timeline_entries(answer))


def timeline_entries(answer: Answer) -> tuple[TimelineEntry, ...]:
    """The answer's quotes, oldest article first, undated last (for a page to lay out)."""
    from rag.timeline import timeline as ordered

    return ordered(answer.quotes)


def _days(as_of: object, since: object, until: object) -> tuple[date | None, date | None, date | None]:
    return validate.day(as_of, "as_of"), validate.day(since, "since"), validate.day(until, "until")


def document(doc_id: str, index_dir: str | Path | None = None) -> Document:
    """The indexed article `doc_id` (a Passage's or Quote's doc_id): its `text` is what their start/end
    index. For a UTF-8 .txt/.md file that is the file itself, `Path(source).read_text(encoding="utf-8")`;
    for HTML and PDF it is the extracted text."""
    documents = retriever_for(index_dir).stored.documents
    if doc_id not in documents:
        raise QueryError(f"no document {doc_id!r} in the index")
    return documents[doc_id]
