"""The on-disk index: an inspectable directory, committed atomically by its manifest.

    index/
      manifest.json            format version, model, dimension, settings, documents, file checksums
      documents-<gen>.jsonl    one article per line: metadata and the text offsets point into
      chunks-<gen>.jsonl       one chunk per line: doc_id, offsets, page, text
      vectors-<gen>.npy        float32 [chunks x dimension], L2-normalised, row i = chunk line i
      dense-<gen>.faiss        FAISS inner-product index over those vectors
      bm25-<gen>/              bm25s arrays (.npy) and vocabulary (.json)
      sentences-<gen>.jsonl    per article, the [start, end) offsets of its sentences
      sentence-vectors-<gen>.npy  float16 [sentences x dimension], row order of sentences-<gen>.jsonl:
                               embedded once at build time so that answering never embeds a sentence

A build writes a new generation beside the current one, fsyncs it, then replaces
manifest.json in one rename: a reader sees the old index or the new one, never half of
each, and a build killed at any point leaves the old manifest and its files in place.
The previous generation is kept one build longer so that readers holding it can finish.
Nothing is pickled; numpy loads with allow_pickle=False.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexBusyError, IndexMismatchError, IndexMissingError
from rag.lexical import LexicalIndex
from rag.locks import file_lock
from rag.types import Chunk, Document

FORMAT_VERSION = 2  # 2: document text is the whole file, with body_start
MANIFEST = "manifest.json"
LOCK = ".lock"


@dataclass(frozen=True)
class Manifest:
    format_version: int
    generation: int
    model: str
    dimension: int
    settings: dict[str, Any]
    documents: dict[str, dict[str, Any]]  # doc_id -> {source, chunks, outlet, title}
    files: dict[str, str]  # file name -> sha256
    faiss_type: str = "flat"
    created_at: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "generation": self.generation,
            "model": self.model,
            "dimension": self.dimension,
            "settings": self.settings,
            "faiss_type": self.faiss_type,
            "created_at": self.created_at,
            "stats": self.stats,
            "files": self.files,
            "documents": self.documents,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        return cls(
            format_version=int(data["format_version"]),
            generation=int(data["generation"]),
            model=str(data["model"]),
            dimension=int(data["dimension"]),
            settings=dict(data["settings"]),
            documents=dict(data["documents"]),
            files=dict(data["files"]),
            faiss_type=str(data.get("faiss_type", "flat")),
            created_at=float(data.get("created_at", 0.0)),
            stats=dict(data.get("stats", {})),
        )


@dataclass
class StoredIndex:
    """An index loaded in memory."""

    directory: Path
    manifest: Manifest
    documents: dict[str, Document]
    chunks: list[Chunk]
    vectors: np.ndarray
    dense: Any  # faiss.Index
    lexical: LexicalIndex
    sentences: SentenceTable = field(default_factory=lambda: SentenceTable({}, np.zeros((0, 0), np.float16)))


@dataclass(frozen=True)
class SentenceTable:
    """Every article's sentences with their vectors: doc_id -> (first row, [n x 2] offsets)."""

    spans: dict[str, tuple[int, np.ndarray]]
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


def rebuild_hint(index_dir: Path) -> str:
    return f"rebuild it with `rag index --rebuild --index-dir {index_dir}`"


def read_manifest(index_dir: Path, any_format: bool = False) -> Manifest:
    path = Path(index_dir) / MANIFEST
    if not path.exists():
        raise IndexMissingError(f"no index in {index_dir}; build one with `rag index corpus --index-dir {index_dir}`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest.from_json(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexMismatchError(f"index manifest in {index_dir} is unreadable; {rebuild_hint(index_dir)}") from exc
    if manifest.format_version != FORMAT_VERSION and not any_format:
        raise IndexMismatchError(
            f"index in {index_dir} has format {manifest.format_version}, this version reads "
            f"{FORMAT_VERSION}; update it with `rag index --index-dir {index_dir}` (texts already embedded are "
            "not embedded again)"
        )
    return manifest


def generation_names(generation: int) -> dict[str, str]:
    return {
        "documents": f"documents-{generation}.jsonl",
        "chunks": f"chunks-{generation}.jsonl",
        "vectors": f"vectors-{generation}.npy",
        "dense": f"dense-{generation}.faiss",
        "bm25": f"bm25-{generation}",
        "sentences": f"sentences-{generation}.jsonl",
        "sentence_vectors": f"sentence-vectors-{generation}.npy",
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checksums(index_dir: Path, names: dict[str, str]) -> dict[str, str]:
    sums: dict[str, str] = {}
    for name in names.values():
        path = index_dir / name
        if path.is_dir():
            for child in sorted(path.iterdir()):
                sums[f"{name}/{child.name}"] = _sha256(child)
        else:
            sums[name] = _sha256(path)
    return sums


def _fsync_tree(path: Path) -> None:
    paths = [path] if path.is_file() else [*sorted(path.iterdir()), path]
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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


def write_index(
    index_dir: Path,
    *,
    generation: int,
    model: str,
    settings: dict[str, Any],
    documents: list[Document],
    chunks: list[Chunk],
    vectors: np.ndarray,
    lexical: LexicalIndex,
    dense: Any,
    faiss_type: str,
    stats: dict[str, Any],
    sentences: SentenceTable | None = None,
) -> Manifest:
    """Write generation `generation` and commit it by replacing the manifest."""
    import faiss

    index_dir.mkdir(parents=True, exist_ok=True)
    names = generation_names(generation)
    for name in names.values():  # leftovers of a build that was killed
        leftover = index_dir / name
        if leftover.is_dir():
            shutil.rmtree(leftover)
        elif leftover.exists():
            leftover.unlink()
    with (index_dir / names["documents"]).open("w", encoding="utf-8") as out:
        for doc in documents:
            out.write(json.dumps(document_to_json(doc), ensure_ascii=False) + "\n")
    with (index_dir / names["chunks"]).open("w", encoding="utf-8") as out:
        for chunk in chunks:
            row = {
                "doc_id": chunk.doc_id,
                "index": chunk.index,
                "start": chunk.start,
                "end": chunk.end,
                "page": chunk.page,
                "text": chunk.text,
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    np.save(index_dir / names["vectors"], np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
    faiss.write_index(dense, str(index_dir / names["dense"]))
    lexical.save(index_dir / names["bm25"])
    table = sentences or SentenceTable({}, np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0), np.float16))
    with (index_dir / names["sentences"]).open("w", encoding="utf-8") as out:
        for doc_id, (first, spans) in table.spans.items():
            out.write(json.dumps({"doc_id": doc_id, "first": first, "spans": spans.tolist()}) + "\n")
    np.save(index_dir / names["sentence_vectors"], np.ascontiguousarray(table.vectors, dtype=np.float16))
    for name in names.values():
        _fsync_tree(index_dir / name)

    chunk_counts: dict[str, int] = {}
    for chunk in chunks:
        chunk_counts[chunk.doc_id] = chunk_counts.get(chunk.doc_id, 0) + 1
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        generation=generation,
        model=model,
        dimension=int(vectors.shape[1]) if vectors.ndim == 2 else 0,
        settings=settings,
        documents={
            d.doc_id: {
                "source": d.source,
                "outlet": d.outlet,
                "title": d.title,
                "chunks": chunk_counts.get(d.doc_id, 0),
            }
            for d in documents
        },
        files=_checksums(index_dir, names),
        faiss_type=faiss_type,
        created_at=time.time(),
        stats=stats,
    )
    tmp = index_dir / f"{MANIFEST}.tmp-{os.getpid()}"
    with tmp.open("w", encoding="utf-8") as out:
        json.dump(manifest.to_json(), out, ensure_ascii=False, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, index_dir / MANIFEST)  # the commit point
    dir_fd = os.open(index_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    _remove_old_generations(index_dir, keep={generation, generation - 1})
    return manifest


def _remove_old_generations(index_dir: Path, keep: set[int]) -> None:
    for path in index_dir.iterdir():
        stem = path.name.split(".", 1)[0]
        prefix, _, number = stem.rpartition("-")
        kinds = ("documents", "chunks", "vectors", "dense", "bm25", "sentences", "sentence-vectors")
        if prefix in kinds and number.isdigit():
            if int(number) not in keep:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        elif path.name.startswith(f"{MANIFEST}.tmp-"):
            path.unlink(missing_ok=True)


def load_index(index_dir: Path, verify: bool = True, any_format: bool = False) -> StoredIndex:
    """Load the committed generation; checksums catch truncated or edited files. `any_format` also
    loads an index of an older format, for a build that reuses its vectors (texts it embedded)."""
    import faiss

    index_dir = Path(index_dir)
    manifest = read_manifest(index_dir, any_format)
    names = generation_names(manifest.generation)
    if verify:
        for name, expected in manifest.files.items():
            path = index_dir / name
            if not path.exists():
                raise IndexMismatchError(f"index file {path} is missing; {rebuild_hint(index_dir)}")
            if _sha256(path) != expected:
                raise IndexMismatchError(
                    f"index file {path} does not match its checksum (truncated or edited); {rebuild_hint(index_dir)}"
                )
    try:
        documents: dict[str, Document] = {}
        with (index_dir / names["documents"]).open(encoding="utf-8") as handle:
            for line in handle:
                doc = document_from_json(json.loads(line))
                documents[doc.doc_id] = doc
        chunks: list[Chunk] = []
        with (index_dir / names["chunks"]).open(encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                chunks.append(
                    Chunk(
                        row["doc_id"],
                        int(row["index"]),
                        int(row["start"]),
                        int(row["end"]),
                        row["text"],
                        row.get("page"),
                    )
                )
        vectors = np.load(index_dir / names["vectors"], allow_pickle=False, mmap_mode="r")
        dense = faiss.read_index(str(index_dir / names["dense"]))
        lexical = LexicalIndex.load(index_dir / names["bm25"], len(chunks))
        sentences = _load_sentences(index_dir, names, manifest, int(vectors.shape[1]))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise IndexMismatchError(
            f"index in {index_dir} is damaged ({type(exc).__name__}); {rebuild_hint(index_dir)}"
        ) from exc
    if len(chunks) != vectors.shape[0] or dense.ntotal != len(chunks):
        raise IndexMismatchError(f"index in {index_dir} is inconsistent; {rebuild_hint(index_dir)}")
    return StoredIndex(index_dir, manifest, documents, chunks, vectors, dense, lexical, sentences)


def _load_sentences(index_dir: Path, names: dict[str, str], manifest: Manifest, dimension: int) -> SentenceTable:
    """The sentence table; empty for an index written before sentences were stored (a build adds them)."""
    if names["sentences"] not in manifest.files:
        return SentenceTable({}, np.zeros((0, dimension), np.float16))
    spans: dict[str, tuple[int, np.ndarray]] = {}
    with (index_dir / names["sentences"]).open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            spans[row["doc_id"]] = (int(row["first"]), np.asarray(row["spans"], dtype=np.int64).reshape(-1, 2))
    table_vectors = np.load(index_dir / names["sentence_vectors"], allow_pickle=False, mmap_mode="r")
    return SentenceTable(spans, table_vectors)


def build_lock(index_dir: Path, wait_seconds: float = 600.0) -> contextlib.AbstractContextManager[None]:
    """One build at a time per index directory, across processes (an flock)."""
    busy = IndexBusyError(f"another build is updating {index_dir}; try again when it finishes")
    return file_lock(Path(index_dir) / LOCK, wait_seconds, busy)
