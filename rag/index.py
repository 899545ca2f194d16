"""Build or update the index from source files, re-embedding only what changed."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.chunk import ChunkSettings, chunk_document
from rag.clean import CLEAN_VERSION
from rag.dates import count_undated
from rag.embed import DEFAULT_MODEL, Embedder, load_embedder, model_identity
from rag.errors import ArgumentError, IndexMismatchError, IndexMissingError, IngestError, RagError
from rag.ingest import DEFAULT_MAX_BYTES, find_source_files, read_document
from rag.legacy import LegacyIndex, is_legacy, read_legacy
from rag.sentences import sentence_spans
from rag.store import (
    FORMAT_VERSION,
    STORES,
    Manifest,
    NewDocuments,
    SentenceTable,
    Store,
    build_lock,
    chunk_id,
    empty_store,
    load_index,
    read_manifest,
    store_of,
)
from rag.types import Chunk, Document

log = logging.getLogger(__name__)

# Flat search is exact and fast enough up to this many chunks; above it an HNSW graph keeps
# queries in milliseconds at a small recall cost (see docs/benchmarks.md, "Growth").
HNSW_MIN_CHUNKS = 200_000
DEFAULT_STORE = "segments"  # for a new index; "qdrant" needs a server to scale (README, "Qdrant")


@dataclass(frozen=True)
class BuildSettings:
    model: str = DEFAULT_MODEL
    chunk: ChunkSettings = field(default_factory=ChunkSettings)
    title_prefix: bool = True  # embed "headline\nchunk": the headline says what the chunk is about
    max_file_bytes: int = DEFAULT_MAX_BYTES
    batch_size: int = 64
    hnsw_min_chunks: int = HNSW_MIN_CHUNKS
    query_onnx: bool = True  # keep an ONNX copy of the model in the index: questions then skip torch
    store: str | None = None  # "segments" or "qdrant" (rag/qdrant_store.py); None: the index's own, else segments
    qdrant_url: str | None = None  # with store="qdrant": a server; None: Qdrant's local mode in the index directory

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> BuildSettings:
        """The settings an index was built with: updating it keeps its model and chunking."""
        stored = manifest.settings
        chunk = stored.get("chunk") or {}
        known = ChunkSettings().as_dict()
        return cls(
            model=manifest.model,
            chunk=ChunkSettings(**{k: int(v) for k, v in chunk.items() if k in known}),
            title_prefix=bool(stored.get("title_prefix", True)),
        )

    def fingerprint(self) -> dict[str, Any]:
        """What must match for stored vectors to be reused."""
        return {
            "model": model_identity(self.model),
            "chunk": self.chunk.as_dict(),
            "title_prefix": self.title_prefix,
            "clean_version": CLEAN_VERSION,
        }


@dataclass(frozen=True)
class BuildReport:
    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # duplicates of another source
    rejected: tuple[tuple[str, str], ...] = ()  # (path, reason)
    warnings: tuple[str, ...] = ()
    documents: int = 0
    undated: int = 0  # articles without a publication date
    chunks: int = 0
    embedded: int = 0  # chunks embedded by this build
    sentences_embedded: int = 0  # sentences embedded by this build (for answering)
    seconds: float = 0.0
    index_dir: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": list(self.added),
            "updated": list(self.updated),
            "removed": list(self.removed),
            "unchanged": list(self.unchanged),
            "skipped": list(self.skipped),
            "rejected": [{"source": s, "reason": r} for s, r in self.rejected],
            "warnings": list(self.warnings),
            "documents": self.documents,
            "undated": self.undated,
            "chunks": self.chunks,
            "embedded": self.embedded,
            "sentences_embedded": self.sentences_embedded,
            "seconds": round(self.seconds, 3),
            "index_dir": self.index_dir,
        }

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged, {len(self.skipped)} skipped, {len(self.rejected)} rejected; "
            f"{self.documents} documents ({self.undated} without a date), {self.chunks} chunks "
            f"({self.embedded} embedded) in {self.seconds:.1f}s"
        )


def embedding_text(chunk: Chunk, doc: Document, title_prefix: bool) -> str:
    return f"{doc.title}\n{chunk.text}" if title_prefix and doc.title else chunk.text


def chunk_for_model(doc: Document, settings: BuildSettings, embedder: Embedder) -> list[Chunk]:
    budget = embedder.max_seq_length - embedder.special_tokens()
    if settings.title_prefix and doc.title:
        budget -= embedder.count_tokens(doc.title + "\n") + 1
    return chunk_document(doc, settings.chunk, embedder.count_tokens, budget=max(16, budget))


@dataclass(frozen=True)
class EmbeddedBatch:
    """Articles ready for the store, and how many of their texts were embedded (not reused)."""

    add: NewDocuments
    embedded: int
    sentences_embedded: int


def embed_documents(
    docs: list[Document],
    settings: BuildSettings,
    embedder: Embedder,
    known_chunks: KnownVectors,
    known_sentences: KnownVectors,
    progress: bool = False,
) -> EmbeddedBatch:
    """Chunk `docs` and embed their chunks and sentences, reusing the vectors of texts already known."""
    chunks: list[Chunk] = []
    for doc in docs:
        chunks.extend(chunk_for_model(doc, settings, embedder))
    by_id = {d.doc_id: d for d in docs}
    texts = [embedding_text(c, by_id[c.doc_id], settings.title_prefix) for c in chunks]
    embedded = 0
    vectors = np.zeros((0, embedder.dimension), np.float32)
    if texts:
        log.info("embedding %d chunks", len(texts))
        vectors, embedded = known_chunks.embed(texts, embedder, settings.batch_size, progress)
    sentences, sentences_embedded = _sentence_table(docs, chunks, known_sentences, embedder, settings, progress)
    return EmbeddedBatch(NewDocuments(docs, chunks, vectors, texts, sentences), embedded, sentences_embedded)


class BuildEngine(Protocol):
    """Where a build reads files and embeds articles: in this process (LocalEngine) or on Ray (rag/ray_build.py).
    Deciding what changed and committing to the store stay in build_index."""

    def read(self, paths: Sequence[Path], max_bytes: int, progress: bool) -> list[Document | IngestError]:
        """Each path read as an article, or why it is not one, in the order of `paths`."""
        ...

    def embed(
        self,
        docs: list[Document],
        settings: BuildSettings,
        embedder: Embedder,
        known_chunks: KnownVectors,
        known_sentences: KnownVectors,
        progress: bool,
    ) -> Iterator[EmbeddedBatch]:
        """`docs` embedded (embed_documents), in order, in one or more batches of whole articles:
        each batch is committed as it comes. At least one batch, empty when `docs` is."""
        ...


class LocalEngine:
    """Everything in this process, one commit."""

    def read(self, paths: Sequence[Path], max_bytes: int, progress: bool) -> list[Document | IngestError]:
        if progress:
            from tqdm import tqdm

            iterator: Iterable[Path] = tqdm(paths, desc="reading", unit="file")
        else:
            iterator = paths
        return [read_or_reason(path, max_bytes) for path in iterator]

    def embed(
        self,
        docs: list[Document],
        settings: BuildSettings,
        embedder: Embedder,
        known_chunks: KnownVectors,
        known_sentences: KnownVectors,
        progress: bool,
    ) -> Iterator[EmbeddedBatch]:
        yield embed_documents(docs, settings, embedder, known_chunks, known_sentences, progress)


def read_or_reason(path: Path, max_bytes: int) -> Document | IngestError:
    try:
        return read_document(path, max_bytes=max_bytes)
    except IngestError as exc:
        return exc


def make_dense_index(vectors: np.ndarray, hnsw_min_chunks: int) -> tuple[Any, str]:
    import faiss

    dimension = vectors.shape[1]
    index: Any
    if len(vectors) >= hnsw_min_chunks:
        index = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        kind = "hnsw32"
    else:
        index = faiss.IndexFlatIP(dimension)
        kind = "flat"
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index, kind


def build_index(
    sources: Sequence[str | Path] = ("corpus",),
    index_dir: str | Path = "index",
    *,
    settings: BuildSettings | None = None,
    rebuild: bool = False,
    progress: bool = False,
    embedder: Embedder | None = None,
    engine: BuildEngine | None = None,
) -> BuildReport:
    """Make `index_dir` hold exactly the articles under `sources`.

    Unchanged articles keep their vectors; changed ones are embedded again; articles no
    longer under `sources` are dropped; a file whose content another file already has is
    indexed once. Unreadable files are reported in `rejected` and do not stop the build;
    an article that was indexed before and is now unreadable keeps its previous version.
    A source that does not exist raises IngestError before anything is touched.

    `engine` reads and embeds (default: LocalEngine, in this process, one commit). An engine that
    yields several batches gets one commit per batch, each atomic: a build killed part way keeps
    the batches committed so far, and the next build embeds only the rest.
    """
    started = time.perf_counter()
    engine = engine or LocalEngine()
    settings = settings or BuildSettings()
    index_dir = Path(index_dir)
    if isinstance(sources, str | Path):  # one path, not a sequence of one-letter paths
        sources = [sources]
    for source in sources:
        # A mistyped path would otherwise make a build that drops every article that came from it.
        if not Path(source).exists():
            raise IngestError(str(source), "no such file or folder; the index was not changed")
    if settings.store not in (None, *STORES):
        raise ArgumentError(f"store must be one of {', '.join(STORES)}, not {settings.store!r}")
    embedder = embedder or load_embedder(settings.model)
    fingerprint = settings.fingerprint()
    if embedder.name.startswith("hash:"):
        fingerprint["model"] = embedder.name

    with build_lock(index_dir):
        previous = None if rebuild else _load_previous(index_dir, fingerprint, settings)
        docs, report_parts = _read_sources(sources, settings, previous, progress, engine)

        if previous is not None and _nothing_changed(report_parts, docs, previous):
            return replace(
                report_parts,
                documents=len(docs),
                chunks=previous.size,
                index_dir=str(index_dir),
                seconds=time.perf_counter() - started,
            )

        # Only what changed is written: deleted and changed articles become tombstones, new and
        # changed ones go into a new segment (an article under a new name is re-added, not re-embedded).
        stored = previous.manifest.documents if previous is not None else {}
        current = {d.doc_id: d for d in docs}
        # An article whose date reads differently now (rag/dates.py changed) is re-added too.
        delete = [
            i
            for i, e in stored.items()
            if i not in current or current[i].source != e["source"] or current[i].date != e.get("date", "")
        ]
        fresh_docs = [d for d in docs if d.doc_id not in stored or d.doc_id in set(delete)]

        # Vectors of texts embedded before are reused: those of the articles being replaced, or when
        # only the chunking or format changed, those of the whole earlier index under the same model.
        # An index of the monolithic formats 1 and 2 is read for its vectors only (rag/legacy.py).
        earlier = previous or (None if rebuild else _load_same_model(index_dir, fingerprint))
        known_chunks, known_sentences = KnownVectors.empty(), KnownVectors.empty()
        if isinstance(earlier, LegacyIndex):
            known_chunks = KnownVectors.of_legacy_chunks(earlier, settings.title_prefix)
            known_sentences = KnownVectors.of_legacy_sentences(earlier)
        elif earlier is not None:
            reusable = delete if previous is not None else list(earlier.manifest.documents)
            known_chunks = KnownVectors.of_chunks(earlier, reusable, settings.title_prefix)
            known_sentences = KnownVectors.of_sentences(earlier, reusable)
        batches = engine.embed(fresh_docs, settings, embedder, known_chunks, known_sentences, progress)

        from rag.onnx_embed import copy_for_queries

        earlier_settings = (
            earlier.settings if isinstance(earlier, LegacyIndex) else earlier.manifest.settings if earlier else {}
        )
        known_onnx = earlier_settings.get("query_onnx")
        store = previous or empty_store(
            index_dir, fingerprint["model"], embedder.dimension, *_wanted_store(index_dir, settings)
        )
        committed_settings: dict[str, Any] | None = None
        embedded = sentences_embedded = 0
        undeleted = list(delete)
        pending: EmbeddedBatch | None = next(batches)
        while pending is not None:
            batch, pending = pending, next(batches, None)
            last = pending is None
            if committed_settings is None:
                query_onnx = copy_for_queries(index_dir, embedder, known_onnx) if settings.query_onnx else None
                committed_settings = {**fingerprint, "sources": [str(s) for s in sources], "query_onnx": query_onnx}
            embedded += batch.embedded
            sentences_embedded += batch.sentences_embedded
            # Articles gone or replaced are deleted by the last commit, so that a build killed between
            # commits loses none; one re-added under its id (a new name or date) by the commit that brings it back.
            removing = undeleted
            if not last:
                readded = {d.doc_id for d in batch.add.documents} & set(undeleted)
                removing, undeleted = sorted(readded), [i for i in undeleted if i not in readded]
            manifest = store.apply(
                batch.add,
                removing,
                settings=committed_settings,
                stats={"embedded": embedded, "sentences_embedded": sentences_embedded},
                hnsw_min_chunks=settings.hnsw_min_chunks,
                merge=None if last else False,  # the automatic merge policy once, at the end
            )
            if not last:
                store = load_index(index_dir, verify=False)
        report = replace(
            report_parts,
            documents=len(docs),
            chunks=int(manifest.stats["chunks"]),
            embedded=embedded,
            sentences_embedded=sentences_embedded,
            index_dir=str(index_dir),
        )
    return replace(report, seconds=time.perf_counter() - started)


def compact_index(index_dir: str | Path, hnsw_min_chunks: int = HNSW_MIN_CHUNKS) -> Manifest:
    """Merge the index's segments into one, dropping tombstoned chunks (chunk ids do not change)."""
    index_dir = Path(index_dir)
    with build_lock(index_dir):
        return load_index(index_dir, verify=False).compact(hnsw_min_chunks)


class KnownVectors:
    """Vectors an earlier build made with the same model, found by the hash of the embedded text."""

    def __init__(self, rows: dict[bytes, int], vectors: np.ndarray) -> None:
        self._rows = rows
        self._vectors = vectors

    @classmethod
    def empty(cls) -> KnownVectors:
        return cls({}, np.zeros((0, 0), np.float32))

    @classmethod
    def of_chunks(cls, stored: Store, doc_ids: Sequence[str], title_prefix: bool) -> KnownVectors:
        """The chunk vectors of these articles of `stored`."""
        if bool(stored.manifest.settings.get("title_prefix", True)) != title_prefix:
            return cls.empty()
        ids: list[str] = []
        rows: dict[bytes, int] = {}
        for doc_id in doc_ids:
            doc = stored.documents[doc_id]
            for i in range(stored.info(doc_id).chunks):
                chunk = stored.chunk(chunk_id(doc_id, i))
                rows[_text_key(embedding_text(chunk, doc, title_prefix))] = len(ids)
                ids.append(chunk_id(doc_id, i))
        return cls(rows, stored.vectors(ids))

    @classmethod
    def of_sentences(cls, stored: Store, doc_ids: Sequence[str]) -> KnownVectors:
        """The sentence vectors of these articles of `stored`."""
        rows: dict[bytes, int] = {}
        blocks: list[np.ndarray] = [np.zeros((0, stored.manifest.dimension), np.float32)]
        count = 0
        for doc_id in doc_ids:
            text = stored.documents[doc_id].text
            offsets, vectors = stored.sentences.of(doc_id, 0, len(text) + 1)
            for i, (start, end) in enumerate(offsets.tolist()):
                rows[_text_key(text[start:end])] = count + i
            count += len(offsets)
            blocks.append(vectors)
        return cls(rows, np.concatenate(blocks))

    @classmethod
    def of_legacy_chunks(cls, legacy: LegacyIndex, title_prefix: bool) -> KnownVectors:
        """The chunk vectors of an index of format 1 or 2."""
        if bool(legacy.settings.get("title_prefix", True)) != title_prefix:
            return cls.empty()
        rows: dict[bytes, int] = {}
        for row, (doc_id, text) in enumerate(legacy.chunk_texts):
            title = legacy.titles.get(doc_id, "")
            rows[_text_key(f"{title}\n{text}" if title_prefix and title else text)] = row
        return cls(rows, legacy.vectors)

    @classmethod
    def of_legacy_sentences(cls, legacy: LegacyIndex) -> KnownVectors:
        """The sentence vectors of an index of format 1 or 2 (none for one written before sentences)."""
        return cls({_text_key(text): row for text, row in legacy.sentence_texts()}, legacy.sentence_vectors)

    def embed(self, texts: list[str], embedder: Embedder, batch_size: int, progress: bool) -> tuple[np.ndarray, int]:
        """Vectors of `texts`, embedding only those not known; returns them and how many were embedded."""
        out = np.zeros((len(texts), embedder.dimension), np.float32)
        missing: list[int] = []
        for i, text in enumerate(texts):
            row = self._rows.get(_text_key(text))
            if row is None:
                missing.append(i)
            else:
                out[i] = self._vectors[row]
        if missing:
            out[missing] = embedder.encode([texts[i] for i in missing], batch_size=batch_size, progress=progress)
        return out, len(missing)


def _text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _sentence_table(
    docs: list[Document],
    chunks: list[Chunk],
    known: KnownVectors,
    embedder: Embedder,
    settings: BuildSettings,
    progress: bool,
) -> tuple[SentenceTable, int]:
    """Each article's sentences (over the text its chunks cover) and their vectors, embedded at
    build time so that answering never embeds a sentence. Returns the table and how many were embedded."""
    covered: dict[str, tuple[int, int]] = {}
    for chunk in chunks:
        lo, hi = covered.get(chunk.doc_id, (chunk.start, chunk.end))
        covered[chunk.doc_id] = (min(lo, chunk.start), max(hi, chunk.end))
    spans: dict[str, tuple[int, np.ndarray]] = {}
    texts: list[str] = []
    for doc in docs:
        if doc.doc_id not in covered:
            continue
        offsets = np.array(
            [(sp.start, sp.end) for sp in sentence_spans(doc.text, *covered[doc.doc_id])], dtype=np.int64
        ).reshape(-1, 2)
        spans[doc.doc_id] = (len(texts), offsets)
        texts.extend(doc.text[a:b] for a, b in offsets.tolist())
    if texts:
        log.info("sentences: %d", len(texts))
    vectors, embedded = known.embed(texts, embedder, settings.batch_size, progress)
    return SentenceTable(spans, vectors.astype(np.float16)), embedded


def _load_same_model(index_dir: Path, fingerprint: dict[str, Any]) -> Store | LegacyIndex | None:
    """The current index when only its chunking or format changed: its vectors are still good for
    the same texts under the same model."""
    if is_legacy(index_dir):
        legacy = read_legacy(index_dir)
        return legacy if legacy is not None and legacy.model == fingerprint["model"] else None
    try:
        stored = load_index(index_dir, verify=False, any_format=True)
    except (IndexMissingError, IndexMismatchError):
        return None
    return stored if stored.manifest.model == fingerprint["model"] else None


def _nothing_changed(report: BuildReport, docs: list[Document], previous: Store) -> bool:
    stored = previous.manifest.documents
    return (
        not (report.added or report.updated or report.removed)
        and {d.doc_id for d in docs} == set(stored)
        and all(stored[d.doc_id]["source"] == d.source for d in docs)
        and all(stored[d.doc_id].get("date", "") == d.date for d in docs)
    )


def _wanted_store(index_dir: Path, settings: BuildSettings) -> tuple[str, str | None]:
    """(store, Qdrant URL) to build in: the settings', else the index's own, else the default."""
    if settings.store is not None:
        return settings.store, settings.qdrant_url if settings.store == "qdrant" else None
    try:
        return store_of(read_manifest(index_dir, any_format=True).settings)
    except RagError:
        return DEFAULT_STORE, None


def _load_previous(index_dir: Path, fingerprint: dict[str, Any], settings: BuildSettings) -> Store | None:
    """The current index if its vectors can be reused, else None (and everything is embedded).
    File sizes are checked, not checksums: reading the whole archive would make every update
    as slow as the archive is large."""
    if is_legacy(index_dir):
        log.info(
            "updating the index in %s to format %d (texts already embedded are not embedded again)",
            index_dir,
            FORMAT_VERSION,
        )
        return None
    try:
        previous = load_index(index_dir, verify=False)
    except IndexMissingError:
        return None
    except IndexMismatchError as exc:
        log.warning("%s; building it again", exc)
        return None
    stored = {k: previous.manifest.settings.get(k) for k in fingerprint}
    if stored != fingerprint:
        log.warning("index settings changed (%s -> %s); embedding everything again", stored, fingerprint)
        return None
    if settings.store is not None and store_of(previous.manifest.settings) != _wanted_store(index_dir, settings):
        # Built again in the store asked for; _load_same_model still gives it the vectors.
        log.info("moving the index to the %s store", settings.store)
        return None
    return previous


def _read_sources(
    sources: Sequence[str | Path],
    settings: BuildSettings,
    previous: Store | None,
    progress: bool,
    engine: BuildEngine,
) -> tuple[list[Document], BuildReport]:
    old_by_source = {e.source: e for e in map(previous.info, previous.manifest.documents)} if previous else {}
    paths: list[Path] = []
    rejected: list[tuple[str, str]] = []
    warnings: list[str] = []
    for source in sources:
        try:
            found = find_source_files([source], roots=sources)
        except IngestError as exc:
            rejected.append((exc.path, exc.reason))
            continue
        paths.extend(found.files)
        warnings.extend(f"{path}: {reason}" for path, reason in found.skipped)

    docs: list[Document] = []
    seen: dict[str, str] = {}
    added: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    skipped: list[str] = []
    read: list[tuple[str, Document | None]] = []
    for path, result in zip(paths, engine.read(paths, settings.max_file_bytes, progress), strict=True):
        if isinstance(result, IngestError):
            rejected.append((result.path, result.reason))
            log.info("rejected %s", result)  # the report lists it: a warning here would print it twice
            read.append((str(path), None))
        else:
            read.append((str(path), result))
    # The same article under two names is indexed once: under the name it is already indexed
    # under, else the first name. A new copy of an indexed file is the one skipped.
    owner: dict[str, str] = {}
    for source, maybe_doc in read:
        if maybe_doc is not None:
            old = old_by_source.get(source)
            if maybe_doc.doc_id not in owner or (old is not None and old.doc_id == maybe_doc.doc_id):
                owner[maybe_doc.doc_id] = source
    for source, maybe_doc in read:
        if maybe_doc is None:
            if source in old_by_source and old_by_source[source].doc_id not in seen:
                # Nothing lost on bad input: keep what was indexed from this file before.
                assert previous is not None
                kept = previous.documents[old_by_source[source].doc_id]
                seen[kept.doc_id] = source
                docs.append(kept)
            continue
        doc = maybe_doc
        warnings.extend(doc.warnings)
        if doc.doc_id in seen or owner[doc.doc_id] != source:
            skipped.append(source)
            warnings.append(f"{source}: same article as {seen.get(doc.doc_id, owner[doc.doc_id])}; indexed once")
            continue
        seen[doc.doc_id] = source
        old = old_by_source.get(source)
        if old is None:
            added.append(source)
        elif old.doc_id == doc.doc_id:
            unchanged.append(source)
        else:
            updated.append(source)
        docs.append(doc)
    current_sources = {d.source for d in docs} | set(skipped) | {s for s, _ in rejected}
    removed = sorted(s for s in old_by_source if s not in current_sources)
    report = BuildReport(
        added=tuple(added),
        updated=tuple(updated),
        removed=tuple(removed),
        unchanged=tuple(unchanged),
        skipped=tuple(skipped),
        rejected=tuple(rejected),
        warnings=tuple(warnings),
        undated=count_undated(docs),
    )
    return docs, report
