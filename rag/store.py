"""The index store: the interface retrieval and answering talk to, and its manifest, the commit point.

Retrieval sees articles, chunk ids and scores, never FAISS, bm25s or row numbers. A chunk id is
"<doc_id>:<position>": the article's content hash and the chunk's place in it, so the same
article gives the same ids in every build, before and after compaction. The default store,
rag.segments.SegmentStore, keeps FAISS and BM25 term counts in immutable segments:

    index/
      manifest.json        format version, model, dimension, settings, segments (their files'
                           checksums and their tombstones), retired segments
      seg-<n>/             one segment, written once by the build that added its articles:
        documents.jsonl      one article per line: metadata and the text every offset points into
        chunks.jsonl         one chunk per line: doc_id, index, offsets, page, text (for reading)
        chunk-table.npy      int64 [chunks x 5]: article ordinal, index, start, end, page (-1: none)
        vectors.npy          float32 [chunks x dimension], L2-normalised
        dense.faiss          FAISS inner-product index over those vectors (flat, or HNSW when large)
        terms/               BM25 term counts: vocab.json, indptr/rows/counts/lengths .npy
        sentence-spans.npy   int64 [sentences x 2]: each article's sentence offsets, in article order
        sentence-vectors.npy float16 [sentences x dimension]: embedded at build time
        meta.json            the segment's articles: metadata and where their rows and bytes are

The live articles are those the segments list less their tombstones: the manifest does not list
them (it did up to format 3, which is still read), so a commit writes a manifest whose size does
not grow with the archive and adding one article costs the same at any size (bench/append.py).

A build writes a new segment beside the committed ones, fsyncs it, then replaces manifest.json
in one rename: a reader sees the old index or the new one, never half of each, and a build
killed at any point leaves the old manifest and its files in place. An article deleted or
changed is a tombstone: its rows stay in their segment, left out of every search. Segments the
previous manifest used are kept one commit longer ("retired") so that readers holding it can
finish. Nothing is pickled; numpy loads with allow_pickle=False.

The manifest's settings name the store: "segments" (the default) or "qdrant" (rag/qdrant_store.py:
searches in a Qdrant collection, the rest in segments as above), and load_index opens that one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.errors import IndexBusyError, IndexMismatchError, IndexMissingError
from rag.locks import file_lock
from rag.types import Chunk, Document

# 4: articles listed by their segments only; 3: also by the manifest (read still); 2: whole-file text with
# body_start, sentences; 1: the first (rag/legacy.py reads 1 and 2)
FORMAT_VERSION = 4
READABLE_FORMATS = (3, 4)
MANIFEST = "manifest.json"
LOCK = ".lock"


@dataclass(frozen=True)
class Manifest:
    format_version: int
    generation: int
    model: str
    dimension: int
    settings: dict[str, Any]
    # doc_id -> {segment, source, outlet, title, date, chunks}: the live articles, from the segments'
    # listings less their tombstones (written in the manifest itself up to format 3)
    documents: dict[str, dict[str, Any]]
    segments: tuple[dict[str, Any], ...] = ()  # {name, documents, chunks, faiss, deleted: [doc_id], files}
    retired: tuple[str, ...] = ()  # segments of the previous generation only, removed by the next commit
    faiss_type: str = "flat"
    created_at: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def files(self) -> dict[str, str]:
        """Every committed file (path relative to the index) -> sha256."""
        return {f"{s['name']}/{name}": digest for s in self.segments for name, digest in s["files"].items()}

    def to_json(self) -> dict[str, Any]:
        data = {
            "format_version": self.format_version,
            "generation": self.generation,
            "model": self.model,
            "dimension": self.dimension,
            "settings": self.settings,
            "faiss_type": self.faiss_type,
            "created_at": self.created_at,
            "stats": self.stats,
            "segments": list(self.segments),
            "retired": list(self.retired),
        }
        if self.format_version <= 3:
            data["documents"] = self.documents
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        return cls(
            format_version=int(data["format_version"]),
            generation=int(data["generation"]),
            model=str(data["model"]),
            dimension=int(data["dimension"]),
            settings=dict(data["settings"]),
            documents=dict(data.get("documents", {})),
            segments=tuple(dict(s) for s in data.get("segments", ())),
            retired=tuple(str(s) for s in data.get("retired", ())),
            faiss_type=str(data.get("faiss_type", "flat")),
            created_at=float(data.get("created_at", 0.0)),
            stats=dict(data.get("stats", {})),
        )


@dataclass(frozen=True)
class SentenceTable:
    """Every article's sentences with their vectors: doc_id -> (first row, [n x 2] offsets)."""

    spans: Mapping[str, tuple[int, np.ndarray]]
    vectors: np.ndarray  # float16, L2-normalised rows

    def of(self, doc_id: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """(offsets [n x 2], vectors [n x d] as float32) of the sentences starting in [start, end)."""
        first, spans = self.spans.get(doc_id, (0, np.zeros((0, 2), np.int64)))
        if not len(spans):
            return spans, np.zeros((0, self.vectors.shape[1] if self.vectors.ndim == 2 else 0), np.float32)
        lo = int(np.searchsorted(spans[:, 0], start, side="left"))
        hi = int(np.searchsorted(spans[:, 0], end, side="left"))
        return spans[lo:hi], np.asarray(self.vectors[first + lo : first + hi], dtype=np.float32)

    def has(self, doc_id: str) -> bool:
        return doc_id in self.spans


@dataclass(frozen=True)
class DocumentInfo:
    """What the store knows of an article without reading its text."""

    doc_id: str
    source: str
    outlet: str
    title: str
    date: str
    chunks: int


@dataclass(frozen=True)
class ChunkRef:
    """Where a chunk is: its stable id, its article and its offsets (no text)."""

    chunk_id: str
    doc_id: str
    index: int
    start: int
    end: int
    page: int | None


@dataclass(frozen=True)
class Filter:
    """Which live chunks a search may return: those of articles from these outlets (outlet_key
    forms; None: any) dated within [since, until] (ISO date prefixes; None: open). Undated articles
    pass the date bounds when `undated` is True: nobody knows they are outside them, and
    retrieval ranks them as if old (issue 11)."""

    outlets: frozenset[str] | None = None
    since: str | None = None
    until: str | None = None
    undated: bool = True


@dataclass(frozen=True)
class NewDocuments:
    """Articles to add, with everything the build computed for them."""

    documents: Sequence[Document]
    chunks: Sequence[Chunk]  # grouped by article, articles in the order of `documents`, indexes 0..n-1
    vectors: np.ndarray  # float32 [chunks x dimension], L2-normalised
    lexical_texts: Sequence[str]  # per chunk, the text BM25 indexes (the embedded text)
    sentences: SentenceTable  # sentences of every added article


def chunk_id(doc_id: str, index: int) -> str:
    return f"{doc_id}:{index}"


def split_chunk_id(value: str) -> tuple[str, int]:
    doc_id, _, index = value.rpartition(":")
    return doc_id, int(index)


class Sentences(Protocol):
    """Sentence offsets and vectors by article (SentenceTable is one)."""

    @property
    def spans(self) -> Mapping[str, tuple[int, np.ndarray]]: ...

    def of(self, doc_id: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray]: ...

    def has(self, doc_id: str) -> bool: ...


class Store(Protocol):
    """What retrieval and answering need of an index; a Qdrant backend implements the same."""

    directory: Path
    manifest: Manifest

    @property
    def size(self) -> int:
        """Live chunks."""
        ...

    @property
    def documents(self) -> Mapping[str, Document]:
        """Live articles by doc_id; text read from disk when asked for."""
        ...

    @property
    def sentences(self) -> Sentences:
        """Sentence offsets and vectors of the live articles."""
        ...

    @property
    def outlets(self) -> tuple[str, ...]:
        """Outlet names of the live articles, sorted."""
        ...

    def info(self, doc_id: str) -> DocumentInfo: ...

    def chunk_ids(self) -> Iterator[str]:
        """Every live chunk id, article by article."""
        ...

    def ref(self, chunk_id: str) -> ChunkRef: ...

    def chunk(self, chunk_id: str) -> Chunk:
        """The chunk with its text."""
        ...

    def vectors(self, chunk_ids: Sequence[str]) -> np.ndarray:
        """float32 [len(chunk_ids) x dimension]."""
        ...

    def dense_search(self, vector: np.ndarray, k: int, where: Filter | None = None) -> list[tuple[str, float]]:
        """The k live chunks nearest to `vector` (cosine), nearest first."""
        ...

    def lexical_search(self, terms: Sequence[str], k: int, where: Filter | None = None) -> list[tuple[str, float]]:
        """The k live chunks with the highest BM25 score (> 0) for these tokenised terms, best first."""
        ...

    def lexical_scores(self, terms: Sequence[str], chunk_ids: Sequence[str]) -> np.ndarray:
        """BM25 score of each of `chunk_ids` (statistics over all live chunks)."""
        ...

    def has_term(self, term: str) -> bool:
        """Whether a live chunk contains this tokenised term."""
        ...

    def document_frequencies(self, terms: Sequence[str]) -> np.ndarray:
        """How many live chunks contain each tokenised term."""
        ...

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
        """Delete articles by doc_id, add new ones, and commit both at once; returns the new manifest.
        `merge`: True merges the segments into one, False does not, None leaves it to the store's policy."""
        ...

    def compact(self, hnsw_min_chunks: int) -> Manifest:
        """Merge every segment into one without tombstones (same chunk ids); returns the new manifest."""
        ...


def rebuild_hint(index_dir: Path) -> str:
    return f"rebuild it with `rag index --rebuild --index-dir {index_dir}`"


def read_manifest(index_dir: Path, any_format: bool = False, articles: bool = True) -> Manifest:
    """The committed manifest. `any_format` also reads one of an older format (its settings and
    sources, for the build that updates it; rag/legacy.py reads the rest). From format 4 the live
    articles are read from the segments' listings; with `articles=False` they are left out (the
    store, which opens the segments anyway, fills them in)."""
    path = Path(index_dir) / MANIFEST
    if not path.exists():
        raise IndexMissingError(f"no index in {index_dir}; build one with `rag index corpus --index-dir {index_dir}`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        version = int(data["format_version"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexMismatchError(f"index manifest in {index_dir} is unreadable; {rebuild_hint(index_dir)}") from exc
    if version not in READABLE_FORMATS and not any_format:
        how = (
            f"update it with `rag index --index-dir {index_dir}` (texts already embedded are not embedded again)"
            if version < FORMAT_VERSION
            else rebuild_hint(index_dir)
        )
        readable = " and ".join(map(str, READABLE_FORMATS))
        raise IndexMismatchError(f"index in {index_dir} has format {version}, this version reads {readable}; {how}")
    try:
        manifest = Manifest.from_json(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexMismatchError(f"index manifest in {index_dir} is unreadable; {rebuild_hint(index_dir)}") from exc
    if articles and version >= 4:
        from rag.segments import live_articles

        manifest = replace(manifest, documents=live_articles(Path(index_dir), manifest.segments))
    return manifest


def write_manifest(index_dir: Path, manifest: Manifest) -> None:
    """The commit point: write a temporary manifest, fsync it, rename it over manifest.json."""
    tmp = index_dir / f"{MANIFEST}.tmp-{os.getpid()}"
    with tmp.open("w", encoding="utf-8") as out:
        out.write(_manifest_text(manifest.to_json()))
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, index_dir / MANIFEST)
    fsync_dir(index_dir)


def _manifest_text(data: dict[str, Any]) -> str:
    """JSON with one setting, segment or document per line: readable, and written by the C encoder
    (indent= falls back to the pure-Python one, seconds for a large archive)."""
    lines = []
    for key, value in data.items():
        if isinstance(value, dict | list) and key in ("documents", "segments") and value:
            items = value.items() if isinstance(value, dict) else enumerate(value)
            inner = ",\n".join(
                (f"  {json.dumps(k, ensure_ascii=False)}: " if isinstance(value, dict) else "  ")
                + json.dumps(v, ensure_ascii=False)
                for k, v in items
            )
            open_, close = ("{", "}") if isinstance(value, dict) else ("[", "]")
            lines.append(f" {json.dumps(key)}: {open_}\n{inner}\n {close}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    paths = [path] if path.is_file() else [*sorted(path.rglob("*")), path]
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def document_to_json(doc: Document) -> dict[str, Any]:
    return {
        "doc_id": doc.doc_id,
        "source": doc.source,
        "outlet": doc.outlet,
        "title": doc.title,
        "author": doc.author,
        "date": doc.date,
        "url": doc.url,
        "pages": [list(p) for p in doc.pages],
        "body_start": doc.body_start,
        "text": doc.text,
    }


def document_from_json(data: dict[str, Any]) -> Document:
    return Document(
        doc_id=data["doc_id"],
        source=data["source"],
        text=data["text"],
        outlet=data["outlet"],
        title=data.get("title", ""),
        author=data.get("author", ""),
        date=data.get("date", ""),
        url=data.get("url", ""),
        pages=tuple((int(a), int(b)) for a, b in data.get("pages", [])),
        body_start=int(data.get("body_start", 0)),
    )


STORES = ("segments", "qdrant")  # the default store (rag/segments.py) and rag/qdrant_store.py


def store_of(settings: Mapping[str, Any]) -> tuple[str, str | None]:
    """(store, Qdrant server URL or None for local mode) recorded in an index's settings."""
    kind = str(settings.get("store") or "segments")
    return kind, (settings.get("qdrant") or {}).get("url") if kind == "qdrant" else None


def load_index(index_dir: Path, verify: bool = True, any_format: bool = False) -> Store:
    """Open the committed index, in the store its manifest names. With `verify`, every file's
    checksum is checked (truncated or edited files); without, only that each file is there with
    its recorded size, and the FAISS indexes and term vocabularies are read when a search first
    needs them (a build that adds a segment never does: its open does not grow with the archive).
    `any_format` also opens a segmented index of an older format, for a build that reuses its vectors."""
    from rag.segments import SegmentStore

    manifest = read_manifest(Path(index_dir), any_format, articles=False)  # the store lists them
    if store_of(manifest.settings)[0] == "qdrant":
        from rag.qdrant_store import QdrantStore

        return QdrantStore.open(Path(index_dir), manifest, verify=verify)
    return SegmentStore.open(Path(index_dir), verify=verify, any_format=any_format, manifest=manifest)


def empty_store(index_dir: Path, model: str, dimension: int, store: str, qdrant_url: str | None) -> Store:
    """A store of nothing of this kind, to build a new index into (see SegmentStore.empty)."""
    from rag.segments import SegmentStore

    if store == "qdrant":
        from rag.qdrant_store import QdrantStore

        return QdrantStore.empty(Path(index_dir), model, dimension, qdrant_url)
    return SegmentStore.empty(Path(index_dir), model, dimension)


def build_lock(index_dir: Path, wait_seconds: float = 600.0) -> contextlib.AbstractContextManager[None]:
    """One build at a time per index directory, across processes (an flock)."""
    busy = IndexBusyError(f"another build is updating {index_dir}; try again when it finishes")
    return file_lock(Path(index_dir) / LOCK, wait_seconds, busy)
