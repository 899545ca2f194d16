"""The default store: FAISS and BM25 term counts in immutable segments, listed by the manifest.

A build that adds articles writes one new segment holding only them, and its listing of them
(meta.json); deleting or changing an article records a tombstone in the manifest, which lists
segments, not articles. Adding one article therefore costs the same whatever the archive's size.
Searches run over every segment and merge: dense top-k by cosine, BM25 with document frequencies
and average length over all live chunks (rag/bm25.py), so the scores are those of one index over
the live chunks. When there are more than MAX_SEGMENTS
segments or tombstoned chunks exceed MAX_DEAD_SHARE of all chunks, the next commit (or
`rag index --compact`) merges every segment into one, reusing stored vectors and term counts:
nothing is embedded or tokenised again, and chunk ids do not change.

Memory: vectors and term counts are memory-mapped, flat FAISS indexes too, and article text
is read from documents.jsonl when a passage needs it (a few hundred articles cached).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from rag.bm25 import TermCounts, bm25_scores, mapped
from rag.errors import IndexMismatchError, IndexMissingError
from rag.outlets import outlet_key
from rag.store import (
    FORMAT_VERSION,
    MANIFEST,
    ChunkRef,
    DocumentInfo,
    Filter,
    Manifest,
    NewDocuments,
    SentenceTable,
    chunk_id,
    document_from_json,
    document_to_json,
    fsync_dir,
    fsync_tree,
    read_manifest,
    rebuild_hint,
    sha256,
    split_chunk_id,
    write_manifest,
)
from rag.types import Chunk, Document

SEGMENT_PREFIX = "seg-"
MAX_SEGMENTS = 8
MAX_DEAD_SHARE = 0.2
DOCUMENT_CACHE = 512  # articles whose text is kept in memory
# Index files of format 1 (one generation of files per build), removed by the first commit of format 2.
_FORMAT1_PREFIXES = ("documents", "chunks", "vectors", "dense", "bm25", "sentences", "sentence-vectors")


@dataclass(frozen=True)
class DocEntry:
    """An article of a segment: its metadata and where its bytes, chunk rows and sentence rows are."""

    doc_id: str
    source: str
    outlet: str
    title: str
    date: str
    offset: int  # byte offset of its line in documents.jsonl
    length: int
    chunk_first: int
    chunk_count: int
    sentence_first: int
    sentence_count: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Segment:
    """One segment on disk, opened: memory-mapped arrays, its FAISS index, its term counts.

    With `lazy`, the FAISS index and the term vocabulary (the two parts whose reading grows with the
    segment) are read when a search first needs them: a build that only adds a segment never does.
    For a build's open, under the build lock: no commit can remove the segment before they are read."""

    def __init__(self, directory: Path, lazy: bool = False) -> None:
        self.directory = directory
        self.name = directory.name
        self.faiss_type, self.docs = read_listing(directory)
        self.by_doc = {d.doc_id: i for i, d in enumerate(self.docs)}
        self.table = mapped(directory / "chunk-table.npy")
        self.vectors = mapped(directory / "vectors.npy")
        self.sentence_spans = mapped(directory / "sentence-spans.npy")
        self.sentence_vectors = mapped(directory / "sentence-vectors.npy")
        self.size = int(self.table.shape[0])
        lengths = mapped(directory / "terms" / "lengths.npy")
        if not (self.vectors.shape[0] == len(lengths) == self.size):
            raise ValueError(f"segment {self.name} has rows that do not line up")
        self._dense: Any = None
        self._terms: TermCounts | None = None
        self._load_lock = threading.Lock()
        if not lazy:
            _ = self.dense, self.terms
        # Kept open: a reader holding this segment can still read articles after a commit removes it.
        self._fd = os.open(directory / "documents.jsonl", os.O_RDONLY)

    @property
    def dense(self) -> Any:
        """The FAISS index (flat codes memory-mapped, not read into memory)."""
        if self._dense is None:
            with self._load_lock, self._damaged():
                if self._dense is None:
                    import faiss

                    path = str(self.directory / "dense.faiss")
                    flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if self.faiss_type == "flat" else 0
                    dense = faiss.read_index(path, flags)
                    if dense.ntotal != self.size:
                        raise ValueError(f"segment {self.name} has rows that do not line up")
                    self._dense = dense
        return self._dense

    @property
    def terms(self) -> TermCounts:
        if self._terms is None:
            with self._load_lock, self._damaged():
                if self._terms is None:
                    self._terms = TermCounts.load(self.directory / "terms")
        return self._terms

    @functools.cached_property
    def doc_of_row(self) -> np.ndarray:
        """Each row's article ordinal."""
        return np.ascontiguousarray(self.table[:, 0])

    @functools.cached_property
    def _outlets_and_dates(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """outlet_key forms, each article's index into them, and each article's date ("" if none)."""
        keys: dict[str, int] = {}
        codes = np.array([keys.setdefault(outlet_key(d.outlet), len(keys)) for d in self.docs], np.int64)
        dates = np.array([d.date for d in self.docs], dtype=str)
        return list(keys), codes, dates

    def docs_matching(self, where: Filter) -> np.ndarray:
        """Which articles (bool per ordinal) `where` lets through: from one of its outlets, and dated
        within [since, until] (ISO prefixes compared as such), or undated when `where.undated` or
        there are no bounds. Vectorised: a Python test per article took 0.6 s at 50k articles."""
        keys, codes, dates = self._outlets_and_dates
        ok = np.ones(len(self.docs), bool)
        if where.outlets is not None:
            ok &= np.array([k in where.outlets for k in keys], bool)[codes] if keys else ok
        if where.since is not None or where.until is not None:
            dated = dates != ""
            inside = dated.copy()
            if where.since is not None:  # a date truncated to the bound's length, as a prefix
                inside &= dates.astype(f"U{len(where.since)}") >= where.since
            if where.until is not None:
                inside &= dates.astype(f"U{len(where.until)}") <= where.until
            ok &= inside | (~dated & where.undated)
        return ok

    @contextlib.contextmanager
    def _damaged(self) -> Iterator[None]:
        """Errors reading a file of the segment as the store reports them (one line, rebuild hint)."""
        index_dir = self.directory.parent
        try:
            yield
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise IndexMismatchError(
                f"index in {index_dir} is damaged ({type(exc).__name__}); {rebuild_hint(index_dir)}"
            ) from exc

    def __del__(self, close: Any = os.close) -> None:  # bound now: at exit the module's globals may be gone
        fd = getattr(self, "_fd", None)
        if fd is not None:
            close(fd)

    def read_document(self, ordinal: int) -> Document:
        entry = self.docs[ordinal]
        data = os.pread(self._fd, entry.length, entry.offset)
        return document_from_json(json.loads(data))

    def spans_of(self, ordinal: int) -> np.ndarray:
        entry = self.docs[ordinal]
        return np.asarray(self.sentence_spans[entry.sentence_first : entry.sentence_first + entry.sentence_count])


def read_listing(directory: Path) -> tuple[str, list[DocEntry]]:
    """A segment's FAISS kind and its articles, from its meta.json."""
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    return str(meta["faiss"]), [DocEntry(**d) for d in meta["documents"]]


def live_listing(entry: Mapping[str, Any], docs: Sequence[DocEntry]) -> dict[str, dict[str, Any]]:
    """The live articles of one segment (its manifest entry, its listing), as Manifest.documents has them."""
    deleted = set(entry["deleted"])
    return {
        d.doc_id: {
            "segment": entry["name"],
            "source": d.source,
            "outlet": d.outlet,
            "title": d.title,
            "date": d.date,
            "chunks": d.chunk_count,
        }
        for d in docs
        if d.doc_id not in deleted
    }


def live_articles(index_dir: Path, segments: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The live articles of a manifest of format 4: every segment's listing less its tombstones."""
    out: dict[str, dict[str, Any]] = {}
    for entry in segments:
        try:
            _, docs = read_listing(index_dir / entry["name"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexMismatchError(
                f"index in {index_dir} is damaged ({entry['name']}: {type(exc).__name__}); {rebuild_hint(index_dir)}"
            ) from exc
        out.update(live_listing(entry, docs))
    return out


def write_segment(
    directory: Path,
    documents: Sequence[Document],
    table: np.ndarray,
    vectors: np.ndarray,
    terms: TermCounts,
    sentence_spans: Sequence[np.ndarray],
    sentence_vectors: np.ndarray,
    hnsw_min_chunks: int,
) -> dict[str, Any]:
    """Write a segment and fsync it; returns its manifest entry. `table` rows are grouped by
    article in the order of `documents` (column 0: the article's position in `documents`)."""
    import faiss

    from rag.index import make_dense_index

    if directory.exists():  # leftovers of a build that was killed
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    entries: list[DocEntry] = []
    counts = np.bincount(table[:, 0], minlength=len(documents)) if len(table) else np.zeros(len(documents), np.int64)
    chunk_first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    sentence_first = 0
    offset = 0
    with (
        (directory / "documents.jsonl").open("wb") as docs_out,
        (directory / "chunks.jsonl").open("w", encoding="utf-8") as chunks_out,
    ):
        for i, doc in enumerate(documents):
            line = (json.dumps(document_to_json(doc), ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
            docs_out.write(line)
            n_sentences = len(sentence_spans[i])
            entries.append(
                DocEntry(
                    doc.doc_id,
                    doc.source,
                    doc.outlet,
                    doc.title,
                    doc.date,
                    offset,
                    len(line),
                    int(chunk_first[i]),
                    int(counts[i]),
                    sentence_first,
                    n_sentences,
                )
            )
            offset += len(line)
            sentence_first += n_sentences
            for _, index, start, end, page in table[chunk_first[i] : chunk_first[i] + counts[i]].tolist():
                row = {
                    "doc_id": doc.doc_id,
                    "index": index,
                    "start": start,
                    "end": end,
                    "page": None if page < 0 else page,
                    "text": doc.text[start:end],
                }
                chunks_out.write(json.dumps(row, ensure_ascii=False) + "\n")
    np.save(directory / "chunk-table.npy", np.ascontiguousarray(table, dtype=np.int64), allow_pickle=False)
    np.save(directory / "vectors.npy", np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
    dense, kind = make_dense_index(vectors, hnsw_min_chunks)
    faiss.write_index(dense, str(directory / "dense.faiss"))
    terms.save(directory / "terms")
    dimension = vectors.shape[1]
    spans = np.concatenate(list(sentence_spans)) if len(sentence_spans) else np.zeros((0, 2), np.int64)
    np.save(directory / "sentence-spans.npy", np.ascontiguousarray(spans, dtype=np.int64).reshape(-1, 2))
    np.save(
        directory / "sentence-vectors.npy",
        np.ascontiguousarray(sentence_vectors, dtype=np.float16).reshape(-1, dimension),
        allow_pickle=False,
    )
    meta = {"faiss": kind, "documents": [e.to_json() for e in entries]}
    (directory / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    fsync_tree(directory)
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    return {
        "name": directory.name,
        "documents": len(documents),
        "chunks": int(len(table)),
        "faiss": kind,
        "deleted": [],
        "files": {str(p.relative_to(directory)): sha256(p) for p in files},
        "bytes": {str(p.relative_to(directory)): p.stat().st_size for p in files},
    }


V = TypeVar("V")


class _ByLiveArticle(Mapping[str, V]):
    """A read-only view keyed by the live articles' doc_ids; subclasses say what a key gives."""

    def __init__(self, store: SegmentStore) -> None:
        self._store = store

    def __iter__(self) -> Iterator[str]:
        return iter(self._store.manifest.documents)

    def __len__(self) -> int:
        return len(self._store.manifest.documents)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._store.manifest.documents


class _Documents(_ByLiveArticle[Document]):
    """The live articles, read from disk on access."""

    def __getitem__(self, doc_id: str) -> Document:
        return self._store.document(doc_id)


class _Spans(_ByLiveArticle[tuple[int, np.ndarray]]):
    """Each live article's first sentence row and sentence offsets."""

    def __getitem__(self, doc_id: str) -> tuple[int, np.ndarray]:
        segment, ordinal = self._store._locate_doc(doc_id)
        return segment.docs[ordinal].sentence_first, segment.spans_of(ordinal)


class _Sentences:
    """Sentence offsets and vectors of the live articles, across segments (as a SentenceTable)."""

    def __init__(self, store: SegmentStore) -> None:
        self._store = store
        self.spans = _Spans(store)

    def of(self, doc_id: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        if doc_id not in self._store.manifest.documents:
            return np.zeros((0, 2), np.int64), np.zeros((0, self._store.manifest.dimension), np.float32)
        segment, ordinal = self._store._locate_doc(doc_id)
        entry = segment.docs[ordinal]
        table = SentenceTable({doc_id: (entry.sentence_first, segment.spans_of(ordinal))}, segment.sentence_vectors)
        return table.of(doc_id, start, end)

    def has(self, doc_id: str) -> bool:
        return doc_id in self._store.manifest.documents


class SegmentStore:
    """The committed index: its segments opened, tombstones applied. Safe to share between threads
    for reading when searches are serialised (the Retriever does)."""

    def __init__(self, directory: Path, manifest: Manifest, segments: Sequence[Segment]) -> None:
        self.directory = directory
        self.manifest = manifest
        self._segments = list(segments)
        self._by_name = {s.name: s for s in self._segments}
        self._live: list[np.ndarray] = []
        for segment in self._segments:
            live = np.zeros(segment.size, bool)
            self._live.append(live)
        index = {s.name: i for i, s in enumerate(self._segments)}
        for doc_id, entry in manifest.documents.items():
            i = index[entry["segment"]]
            doc = self._segments[i].docs[self._segments[i].by_doc[doc_id]]
            self._live[i][doc.chunk_first : doc.chunk_first + doc.chunk_count] = True
        self._offsets = np.cumsum([0, *(s.size for s in self._segments)])
        self._live_count = [int(live.sum()) for live in self._live]
        self._outlets = tuple(sorted({str(e["outlet"]) for e in manifest.documents.values()}))
        self._cache: OrderedDict[str, Document] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._masks: dict[Filter | None, list[tuple[np.ndarray | None, Any, Any]]] = {}
        self._last_bm25: tuple[tuple[str, ...], list[np.ndarray] | None] | None = None
        self._previous = tuple(s.name for s in self._segments)  # kept one commit longer, for readers

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, directory: Path, verify: bool = True, any_format: bool = False, manifest: Manifest | None = None
    ) -> SegmentStore:
        """`manifest`: the committed one, when the caller has read it already (its articles need not be)."""
        manifest = manifest or read_manifest(directory, any_format, articles=False)
        for entry in manifest.segments:
            for name, expected in entry["files"].items():
                path = directory / entry["name"] / name
                if not path.exists():
                    raise IndexMismatchError(f"index file {path} is missing; {rebuild_hint(directory)}")
                size = entry.get("bytes", {}).get(name)
                if (size is not None and path.stat().st_size != size) or (verify and sha256(path) != expected):
                    why = "does not match its checksum (truncated or edited)"
                    raise IndexMismatchError(f"index file {path} {why}; {rebuild_hint(directory)}")
        try:
            # The cheap open (a build's) reads the FAISS indexes and vocabularies only if it searches.
            segments = [Segment(directory / entry["name"], lazy=not verify) for entry in manifest.segments]
            if manifest.format_version >= 4:  # the articles are listed by the segments only
                documents: dict[str, dict[str, Any]] = {}
                for entry, segment in zip(manifest.segments, segments, strict=True):
                    documents.update(live_listing(entry, segment.docs))
                manifest = replace(manifest, documents=documents)
            return cls(directory, manifest, segments)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise IndexMismatchError(
                f"index in {directory} is damaged ({type(exc).__name__}); {rebuild_hint(directory)}"
            ) from exc

    @classmethod
    def empty(cls, directory: Path, model: str, dimension: int) -> SegmentStore:
        """A store of nothing, to build a new index into: its first commit replaces whatever
        manifest `directory` has (keeping that one's segments for a commit, for its readers)."""
        generation, previous_segments = 0, ()
        try:
            previous = read_manifest(directory)
            generation, previous_segments = previous.generation, tuple(s["name"] for s in previous.segments)
        except IndexMissingError:
            pass
        except IndexMismatchError:
            try:  # a manifest of another format: carry its generation on
                generation = int(json.loads((directory / MANIFEST).read_text(encoding="utf-8"))["generation"])
            except (OSError, ValueError, KeyError, TypeError):
                generation = 0
        store = cls(directory, Manifest(FORMAT_VERSION, generation, model, dimension, {}, {}), [])
        store._previous = previous_segments
        return store

    # -- reading -------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return sum(self._live_count)

    @property
    def documents(self) -> Mapping[str, Document]:
        return _Documents(self)

    @property
    def sentences(self) -> _Sentences:
        return _Sentences(self)

    @property
    def outlets(self) -> tuple[str, ...]:
        return self._outlets

    @property
    def segment_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self._segments)

    def info(self, doc_id: str) -> DocumentInfo:
        e = self.manifest.documents[doc_id]
        return DocumentInfo(doc_id, e["source"], e["outlet"], e.get("title", ""), e.get("date", ""), int(e["chunks"]))

    def document(self, doc_id: str) -> Document:
        with self._cache_lock:
            doc = self._cache.get(doc_id)
            if doc is not None:
                self._cache.move_to_end(doc_id)
                return doc
        segment, ordinal = self._locate_doc(doc_id)
        doc = segment.read_document(ordinal)
        with self._cache_lock:
            self._cache[doc_id] = doc
            while len(self._cache) > DOCUMENT_CACHE:
                self._cache.popitem(last=False)
        return doc

    def chunk_ids(self) -> Iterator[str]:
        for segment, live in zip(self._segments, self._live, strict=True):
            for row in np.flatnonzero(live).tolist():
                yield self._id_of(segment, row)

    def ref(self, chunk_id: str) -> ChunkRef:
        segment, row = self._locate(chunk_id)
        ordinal, index, start, end, page = (int(v) for v in segment.table[row])
        return ChunkRef(chunk_id, segment.docs[ordinal].doc_id, index, start, end, None if page < 0 else page)

    def chunk(self, chunk_id: str) -> Chunk:
        ref = self.ref(chunk_id)
        text = self.document(ref.doc_id).text[ref.start : ref.end]
        return Chunk(ref.doc_id, ref.index, ref.start, ref.end, text, ref.page)

    def vectors(self, chunk_ids: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(chunk_ids), self.manifest.dimension), np.float32)
        for i, cid in enumerate(chunk_ids):
            segment, row = self._locate(cid)
            out[i] = segment.vectors[row]
        return out

    def dense_search(self, vector: np.ndarray, k: int, where: Filter | None = None) -> list[tuple[str, float]]:
        import faiss

        query = np.ascontiguousarray(vector.reshape(1, -1), dtype=np.float32)
        hits: list[tuple[float, int, int]] = []
        for i, (segment, (mask, selector, _)) in enumerate(zip(self._segments, self._masks_for(where), strict=True)):
            allowed = self._live_count[i] if mask is None else int(mask.sum())
            if not allowed or k <= 0:
                continue
            params: Any = None
            if segment.faiss_type != "flat":
                params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
                params.efSearch = max(256, 2 * k)  # recall@10 ~0.95 at 300k chunks for <1 ms (bench/growth.py)
            elif selector is not None:
                params = faiss.SearchParameters()
            if selector is not None:
                params.sel = selector
            scores, rows = segment.dense.search(query, min(k, segment.size), params=params)
            hits.extend((float(s), i, int(r)) for s, r in zip(scores[0], rows[0], strict=True) if r >= 0)
        hits.sort(key=lambda h: -h[0])
        return [(self._id_of(self._segments[i], row), score) for score, i, row in hits[:k]]

    def lexical_search(self, terms: Sequence[str], k: int, where: Filter | None = None) -> list[tuple[str, float]]:
        scores = self._bm25(terms)
        if scores is None or k <= 0:
            return []
        found: list[tuple[float, int, int]] = []
        for i, (values, (mask, _, _)) in enumerate(zip(scores, self._masks_for(where), strict=True)):
            rows = np.flatnonzero(values > 0)
            if mask is not None:
                rows = rows[mask[rows]]
            rows = _top(values, rows, k)
            found.extend(zip(values[rows].tolist(), [i] * len(rows), rows.tolist(), strict=True))
        found.sort(key=lambda h: (-h[0], h[1], h[2]))
        return [(self._id_of(self._segments[i], row), score) for score, i, row in found[:k]]

    def lexical_scores(self, terms: Sequence[str], chunk_ids: Sequence[str]) -> np.ndarray:
        scores = self._bm25(terms)
        out = np.zeros(len(chunk_ids), np.float32)
        if scores is None:
            return out
        index = {s.name: i for i, s in enumerate(self._segments)}
        for j, cid in enumerate(chunk_ids):
            segment, row = self._locate(cid)
            out[j] = scores[index[segment.name]][row]
        return out

    def has_term(self, term: str) -> bool:
        for segment, live in zip(self._segments, self._live, strict=True):
            rows, _ = segment.terms.postings(term)
            if len(rows) and live[rows].any():
                return True
        return False

    def document_frequencies(self, terms: Sequence[str]) -> np.ndarray:
        out = np.zeros(len(terms), np.int64)
        for segment, live, count in zip(self._segments, self._live, self._live_count, strict=True):
            vocab = segment.terms.vocab
            columns = np.array([vocab.get(t, -1) for t in terms], np.int64)
            known = np.flatnonzero(columns >= 0)
            # No tombstone: the length of its postings. Counting live rows term by term took 52 ms a
            # question at 1M chunks (feedback asks for ~400 terms).
            if count == segment.size:
                indptr = segment.terms.indptr
                out[known] += indptr[columns[known] + 1] - indptr[columns[known]]
                continue
            for i in known.tolist():
                rows, _ = segment.terms.postings(terms[i])
                out[i] += int(live[rows].sum())
        return out

    def _bm25(self, terms: Sequence[str]) -> list[np.ndarray] | None:
        key = tuple(terms)
        last = self._last_bm25  # candidate_features asks for the top rows and then their scores
        if last is not None and last[0] == key:
            return last[1]
        scores = bm25_scores([(s.terms, live) for s, live in zip(self._segments, self._live, strict=True)], key)
        self._last_bm25 = (key, scores)
        return scores

    def _masks_for(self, where: Filter | None) -> list[tuple[np.ndarray | None, Any, Any]]:
        """Per segment, (rows a search may return or None for all, a FAISS selector or None)."""
        cached = self._masks.get(where)
        if cached is not None:
            return cached
        import faiss

        out: list[tuple[np.ndarray | None, Any, Any]] = []
        for segment, live, count in zip(self._segments, self._live, self._live_count, strict=True):
            if where is None and count == segment.size:
                out.append((None, None, None))
                continue
            mask = live.copy()
            if where is not None:
                mask &= segment.docs_matching(where)[segment.doc_of_row]
            bits = np.packbits(mask, bitorder="little")
            selector = faiss.IDSelectorBitmap(segment.size, faiss.swig_ptr(bits))
            out.append((mask, selector, bits))  # the selector points into `bits`: kept alive together
        if len(self._masks) > 64:
            self._masks.clear()
        self._masks[where] = out
        return out

    def _locate_doc(self, doc_id: str) -> tuple[Segment, int]:
        segment = self._by_name[self.manifest.documents[doc_id]["segment"]]
        return segment, segment.by_doc[doc_id]

    def _locate(self, value: str) -> tuple[Segment, int]:
        doc_id, index = split_chunk_id(value)
        segment, ordinal = self._locate_doc(doc_id)
        entry = segment.docs[ordinal]
        if not 0 <= index < entry.chunk_count:
            raise KeyError(value)
        return segment, entry.chunk_first + index

    @staticmethod
    def _id_of(segment: Segment, row: int) -> str:
        ordinal, index = (int(v) for v in segment.table[row, :2])
        return chunk_id(segment.docs[ordinal].doc_id, index)

    # -- writing -------------------------------------------------------------------------------

    def apply(
        self,
        add: NewDocuments | None,
        delete: Sequence[str],
        *,
        settings: dict[str, Any],
        stats: dict[str, Any],
        hnsw_min_chunks: int,
        merge: bool | None = None,
    ) -> Manifest:
        """Delete articles, add new ones in a new segment, and commit. With `merge` (or when
        `needs_compaction` says so, for merge=None) every live chunk goes into one new segment."""
        deleted = set(delete)
        missing = deleted - self.manifest.documents.keys()
        if missing:
            raise KeyError(f"not in the index: {sorted(missing)[:3]}")
        documents = {k: v for k, v in self.manifest.documents.items() if k not in deleted}
        segments = [dict(s, deleted=list(s["deleted"])) for s in self.manifest.segments]
        by_name = {s["name"]: s for s in segments}
        for doc_id in sorted(deleted):
            by_name[self.manifest.documents[doc_id]["segment"]]["deleted"].append(doc_id)
        added = list(add.documents) if add is not None else []
        if added and (clash := {d.doc_id for d in added} & documents.keys()):
            raise KeyError(f"already in the index: {sorted(clash)[:3]}")
        generation = self.manifest.generation + 1
        name = f"{SEGMENT_PREFIX}{generation}"
        if merge is None:
            merge = needs_compaction(segments, documents, len(added))
        if merge:
            entry = self._write_merged(name, set(documents), add, hnsw_min_chunks)
            segments = [entry] if entry["chunks"] or entry["documents"] else []
            documents = {k: dict(v, segment=name) for k, v in documents.items()}
        else:
            if add is not None and added:
                segments.append(self._write_added(name, add, hnsw_min_chunks))
            # A segment whose every article is deleted is no longer needed.
            live_segments = {v["segment"] for v in documents.values()} | ({name} if added else set())
            segments = [s for s in segments if s["name"] in live_segments]
        dimension = self.manifest.dimension or (int(add.vectors.shape[1]) if add is not None else 0)
        chunk_counts: dict[str, int] = {}
        if add is not None:
            for chunk in add.chunks:
                chunk_counts[chunk.doc_id] = chunk_counts.get(chunk.doc_id, 0) + 1
        for doc in added:
            documents[doc.doc_id] = {
                "segment": name,
                "source": doc.source,
                "outlet": doc.outlet,
                "title": doc.title,
                "date": doc.date,
                "chunks": chunk_counts.get(doc.doc_id, 0),
            }
        names = {s["name"] for s in segments}
        retired = tuple(n for n in self._previous if n not in names)
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            generation=generation,
            model=self.manifest.model,
            dimension=dimension,
            settings=settings,
            documents=documents,
            segments=tuple(segments),
            retired=retired,
            faiss_type=next((s["faiss"] for s in segments if s["faiss"] != "flat"), "flat"),
            created_at=time.time(),
            stats={
                **stats,
                "documents": len(documents),
                "chunks": sum(int(v["chunks"]) for v in documents.values()),
                "segments": len(segments),
                "tombstones": sum(len(s["deleted"]) for s in segments),
            },
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        write_manifest(self.directory, manifest)  # the commit point
        remove_unused(self.directory, keep=names | set(retired))
        return manifest

    def compact(self, hnsw_min_chunks: int) -> Manifest:
        """Merge every segment into one without tombstones; nothing to do when that is already so."""
        m = self.manifest
        if len(m.segments) <= 1 and not any(s["deleted"] for s in m.segments):
            return m
        return self.apply(None, (), settings=m.settings, stats=m.stats, hnsw_min_chunks=hnsw_min_chunks, merge=True)

    def _write_added(self, name: str, add: NewDocuments, hnsw_min_chunks: int) -> dict[str, Any]:
        position = {d.doc_id: i for i, d in enumerate(add.documents)}
        table = np.array(
            [(position[c.doc_id], c.index, c.start, c.end, -1 if c.page is None else c.page) for c in add.chunks],
            dtype=np.int64,
        ).reshape(-1, 5)
        spans: list[np.ndarray] = []
        blocks: list[np.ndarray] = [np.zeros((0, add.vectors.shape[1]), np.float16)]
        for doc in add.documents:
            first, offsets = add.sentences.spans[doc.doc_id]
            spans.append(np.asarray(offsets, np.int64).reshape(-1, 2))
            blocks.append(np.asarray(add.sentences.vectors[first : first + len(offsets)]))
        vectors = np.concatenate(blocks)
        return write_segment(
            self.directory / name,
            add.documents,
            table,
            add.vectors,
            TermCounts.of_texts(add.lexical_texts),
            spans,
            vectors,
            hnsw_min_chunks,
        )

    def _write_merged(
        self, name: str, keep: set[str], add: NewDocuments | None, hnsw_min_chunks: int
    ) -> dict[str, Any]:
        """One segment of the kept live articles of every segment, then the added ones: stored
        vectors, term counts and sentence vectors are copied, nothing is embedded or tokenised again."""
        documents: list[Document] = []
        tables: list[np.ndarray] = []
        vectors: list[np.ndarray] = []
        spans: list[np.ndarray] = []
        sentence_vectors: list[np.ndarray] = []
        term_parts: list[tuple[TermCounts, np.ndarray]] = []
        for segment in self._segments:
            rows_kept = np.zeros(segment.size, bool)
            for ordinal, entry in enumerate(segment.docs):
                if entry.doc_id not in keep or self.manifest.documents[entry.doc_id]["segment"] != segment.name:
                    continue
                lo, hi = entry.chunk_first, entry.chunk_first + entry.chunk_count
                rows_kept[lo:hi] = True
                table = np.array(segment.table[lo:hi])
                table[:, 0] = len(documents)
                tables.append(table)
                documents.append(segment.read_document(ordinal))
                spans.append(segment.spans_of(ordinal))
                s_lo = entry.sentence_first
                sentence_vectors.append(np.asarray(segment.sentence_vectors[s_lo : s_lo + entry.sentence_count]))
            vectors.append(np.asarray(segment.vectors[rows_kept]))
            term_parts.append((segment.terms, rows_kept))
        if add is not None and add.documents:
            base = len(documents)
            position = {d.doc_id: base + i for i, d in enumerate(add.documents)}
            tables.append(
                np.array(
                    [
                        (position[c.doc_id], c.index, c.start, c.end, -1 if c.page is None else c.page)
                        for c in add.chunks
                    ],
                    dtype=np.int64,
                ).reshape(-1, 5)
            )
            documents.extend(add.documents)
            vectors.append(np.asarray(add.vectors, np.float32))
            for doc in add.documents:
                first, offsets = add.sentences.spans[doc.doc_id]
                spans.append(np.asarray(offsets, np.int64).reshape(-1, 2))
                sentence_vectors.append(np.asarray(add.sentences.vectors[first : first + len(offsets)]))
            new_terms = TermCounts.of_texts(add.lexical_texts)
            term_parts.append((new_terms, np.ones(len(new_terms.lengths), bool)))
        dimension = self.manifest.dimension or (int(add.vectors.shape[1]) if add is not None else 0)
        return write_segment(
            self.directory / name,
            documents,
            np.concatenate(tables) if tables else np.zeros((0, 5), np.int64),
            np.concatenate(vectors) if vectors else np.zeros((0, dimension), np.float32),
            TermCounts.merge(term_parts),
            spans,
            np.concatenate(sentence_vectors) if sentence_vectors else np.zeros((0, dimension), np.float16),
            hnsw_min_chunks,
        )


def needs_compaction(segments: Sequence[dict[str, Any]], documents: Mapping[str, Any], adding: int) -> bool:
    """The automatic policy: merge when a commit would leave more than MAX_SEGMENTS segments, or
    tombstoned chunks above MAX_DEAD_SHARE of all stored chunks (they cost search time and disk)."""
    if len(segments) + (1 if adding else 0) > MAX_SEGMENTS:
        return True
    stored = sum(int(s["chunks"]) for s in segments)
    live = sum(int(v["chunks"]) for v in documents.values())
    return stored > 0 and (stored - live) / stored > MAX_DEAD_SHARE


def _top(values: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Those of `rows` (ascending) whose value is among the k highest, with every row tied with the
    k-th: the global top k is then exact, ties included. A common word scores most rows: sorting them
    all in Python took 284 ms (p50) at 500k chunks, this 17 ms (bench/million.py)."""
    if len(rows) <= k:
        return rows
    picked = values[rows]
    kth = np.partition(picked, len(picked) - k)[len(picked) - k]
    return rows[picked >= kth]


def remove_unused(index_dir: Path, keep: set[str]) -> None:
    """Remove segments the manifest does not keep, files of format 1 and stray temporary manifests."""
    for path in index_dir.iterdir():
        name = path.name
        if name.startswith(SEGMENT_PREFIX) and path.is_dir():
            if name not in keep:
                shutil.rmtree(path, ignore_errors=True)
        elif name.startswith(f"{MANIFEST}.tmp-"):
            path.unlink(missing_ok=True)
        else:
            prefix, _, number = name.split(".", 1)[0].rpartition("-")
            if prefix in _FORMAT1_PREFIXES and number.isdigit():
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
    fsync_dir(index_dir)
