"""`rag index --engine ray`: the build's reading and embedding on Ray (the optional `scale` extra).

The build is rag/index.py's `build_index` with a RayEngine: what changed, what is reused, the
report and the commits are the same code; only the work moves. Reading and cleaning files runs
as Ray Data tasks; chunking and embedding run in a pool of actors that each load the model once
(chunking counts tokens with the model's tokenizer, so it runs where the model already is).
Results stream back to the driver (the process running `rag index`), which commits them to the
store every COMMIT_ARTICLES articles: each commit is atomic, and a build killed part way keeps
what it committed, so the next build embeds only the rest.

On a cluster every node needs this package, its model and the source files at the same paths;
the index directory is written by the driver only. Nothing here is imported by the default build.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from rag import validate
from rag.embed import Embedder
from rag.errors import ArgumentError, IngestError, RagError
from rag.index import BuildReport, BuildSettings, EmbeddedBatch, KnownVectors, build_index, embed_documents
from rag.store import NewDocuments, SentenceTable
from rag.types import Document

log = logging.getLogger(__name__)

SCALE_EXTRA_NEEDED = "the Ray engine needs the scale extra: pip install -e '.[scale]'"
# Articles per actor call: enough texts for the model to batch well, small enough to spread over the actors.
BATCH_ARTICLES = 32
# Articles per commit: each commit is a segment; the automatic merge policy runs once, at the last commit.
COMMIT_ARTICLES = 5_000
READ_BATCH = 64  # files per read task


def import_ray() -> ModuleType:
    """The ray module, or the one-line RagError that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (the extra is ray[data]: a bare ray lacks it)
    except ImportError:
        raise RagError(SCALE_EXTRA_NEEDED) from None
    return ray


def build_index_ray(
    sources: Sequence[str | Path] = ("corpus",),
    index_dir: str | Path = "index",
    *,
    settings: BuildSettings | None = None,
    rebuild: bool = False,
    progress: bool = False,
    workers: int | None = None,
    address: str | None = None,
    embedder: Embedder | None = None,
    commit_articles: int = COMMIT_ARTICLES,
    batch_articles: int = BATCH_ARTICLES,
) -> BuildReport:
    """rag.index.build_index with reading and embedding on Ray: the same index, chunk ids and report.

    `address` None starts a local Ray instance with `workers` CPUs (default: all of this machine's);
    otherwise it is a cluster's address (host:port, ray://host:10001), where `workers` embedding actors
    run (default: one per CPU of the cluster). When Ray is already initialised in this process, that
    session is used and left running. Actors load the model by the embedder's name (settings.model).
    Actors take `batch_articles` articles at a time; the driver commits every `commit_articles`.
    """
    ray = import_ray()
    checked_sources = validate.sources(sources)
    directory = validate.build_dir(index_dir)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ArgumentError(f"workers must be a whole number of at least 1, not {workers!r}")
    if min(commit_articles, batch_articles) < 1:
        raise ArgumentError("commit_articles and batch_articles must be at least 1")
    started_here = not ray.is_initialized()
    if started_here:
        _start(ray, workers, address)
    try:
        actors = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        return build_index(
            checked_sources,
            directory,
            settings=validate.settings(settings),
            rebuild=validate.flag(rebuild, "rebuild"),
            progress=validate.flag(progress, "progress"),
            embedder=embedder,
            engine=RayEngine(actors, commit_articles=commit_articles, batch_articles=batch_articles),
        )
    finally:
        if started_here:
            ray.shutdown()


def _start(ray: ModuleType, workers: int | None, address: str | None) -> None:
    # Ray's own log lines follow this process's logging: shown with `rag -v`, else only its errors.
    level = logging.INFO if logging.getLogger().getEffectiveLevel() <= logging.INFO else logging.ERROR
    logging.getLogger("ray").setLevel(level)
    # address="local": a new local instance even when RAY_ADDRESS is set (only the CLI reads it).
    options: dict[str, Any] = {"logging_level": level, "log_to_driver": level == logging.INFO}
    if address is None:
        options |= {"address": "local", "num_cpus": workers or os.cpu_count() or 1, "include_dashboard": False}
    else:
        options["address"] = address
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as exc:  # no cluster there, or a bad address
        where = address or "a local instance"
        raise RagError(f"cannot start Ray on {where}: {type(exc).__name__}: {exc}") from exc
    logging.getLogger("ray.data").setLevel(level)  # Ray Data sets its own level when imported


class RayEngine:
    """rag.index.BuildEngine on Ray Data: reading as tasks, chunking and embedding in `workers` actors."""

    def __init__(
        self, workers: int, *, commit_articles: int = COMMIT_ARTICLES, batch_articles: int = BATCH_ARTICLES
    ) -> None:
        self.workers = workers
        self.commit_articles = commit_articles
        self.batch_articles = batch_articles

    def read(self, paths: Sequence[Path], max_bytes: int, progress: bool) -> list[Document | IngestError]:
        import ray.data

        if not paths:
            return []
        # File names travel as bytes, articles pickled: Arrow holds neither undecodable names nor Documents.
        items = [{"path": os.fsencode(path)} for path in paths]
        with _data_context(progress):
            ds = ray.data.from_items(items).map_batches(
                functools.partial(_read_files, max_bytes=max_bytes),
                batch_size=READ_BATCH,
                batch_format="numpy",
                num_cpus=1,
            )
            results = [pickle.loads(row["result"]) for row in ds.iter_rows()]
        out: list[Document | IngestError] = []
        for result in results:
            out.append(result if isinstance(result, Document) else IngestError(*result))
        return out

    def embed(
        self,
        docs: list[Document],
        settings: BuildSettings,
        embedder: Embedder,
        known_chunks: KnownVectors,
        known_sentences: KnownVectors,
        progress: bool,
    ) -> Iterator[EmbeddedBatch]:
        import ray.data

        if not docs:  # nothing to embed: the one empty batch that carries the deletions
            yield embed_documents(docs, settings, embedder, known_chunks, known_sentences)
            return
        items = [{"doc": pickle.dumps(doc)} for doc in docs]
        with _data_context(progress):
            ds = ray.data.from_items(items).map_batches(
                _ChunkAndEmbed,
                fn_constructor_kwargs={
                    "model": embedder.name,
                    "dimension": embedder.dimension,
                    "settings": settings,
                    "known_chunks": known_chunks,
                    "known_sentences": known_sentences,
                },
                batch_size=self.batch_articles,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=self.workers),
                num_cpus=1,
            )
            pending: list[EmbeddedBatch] = []
            articles = 0
            for row in ds.iter_rows():
                batch: EmbeddedBatch = pickle.loads(row["batch"])
                pending.append(batch)
                articles += len(batch.add.documents)
                if articles >= self.commit_articles:
                    yield join_batches(pending)
                    pending, articles = [], 0
            if pending:
                yield join_batches(pending)


@contextlib.contextmanager
def _data_context(progress: bool) -> Iterator[None]:
    """Results in input order (the same segment rows as the in-process build); progress bars if asked.
    Set for this build only: a Ray session the caller started keeps its own settings."""
    from ray.data import DataContext

    context = DataContext.get_current()
    saved = context.execution_options.preserve_order, context.enable_progress_bars
    context.execution_options.preserve_order, context.enable_progress_bars = True, progress
    try:
        yield
    finally:
        context.execution_options.preserve_order, context.enable_progress_bars = saved


def _read_files(batch: dict[str, np.ndarray], max_bytes: int) -> dict[str, list[bytes]]:
    """A Ray task: read and clean files; each becomes a pickled Document or (path, reason)."""
    from rag.index import read_or_reason

    results: list[bytes] = []
    for name in batch["path"]:
        result = read_or_reason(Path(os.fsdecode(bytes(name))), max_bytes)
        results.append(pickle.dumps(result if isinstance(result, Document) else (result.path, result.reason)))
    return {"result": results}


class _ChunkAndEmbed:
    """A Ray actor: loads the model once, then chunks and embeds batches of articles (embed_documents)."""

    def __init__(
        self,
        model: str,
        dimension: int,
        settings: BuildSettings,
        known_chunks: KnownVectors,
        known_sentences: KnownVectors,
    ) -> None:
        from rag.embed import load_embedder

        self.embedder = load_embedder(model)
        if self.embedder.dimension != dimension:  # another model under the same name on this node
            raise RagError(f"model {model!r} on this Ray node has dimension {self.embedder.dimension}, not {dimension}")
        self.settings = settings
        self.known_chunks = known_chunks
        self.known_sentences = known_sentences

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[bytes]]:
        docs = [pickle.loads(bytes(item)) for item in batch["doc"]]
        done = embed_documents(docs, self.settings, self.embedder, self.known_chunks, self.known_sentences)
        return {"batch": [pickle.dumps(done)]}


def join_batches(batches: Sequence[EmbeddedBatch]) -> EmbeddedBatch:
    """One batch of all of `batches`' articles, in order (one commit)."""
    if len(batches) == 1:
        return batches[0]
    spans: dict[str, tuple[int, np.ndarray]] = {}
    rows = 0
    for batch in batches:
        sentences = batch.add.sentences
        spans.update({doc_id: (first + rows, offsets) for doc_id, (first, offsets) in sentences.spans.items()})
        rows += len(sentences.vectors)
    add = NewDocuments(
        [d for b in batches for d in b.add.documents],
        [c for b in batches for c in b.add.chunks],
        np.concatenate([b.add.vectors for b in batches]),
        [t for b in batches for t in b.add.lexical_texts],
        SentenceTable(spans, np.concatenate([b.add.sentences.vectors for b in batches])),
    )
    return EmbeddedBatch(add, sum(b.embedded for b in batches), sum(b.sentences_embedded for b in batches))
