"""Qdrant as the store that scales out: dense and BM25 searches run in a Qdrant collection.

Each chunk is one point: a dense vector (cosine) and a BM25 sparse vector whose IDF Qdrant applies
at query time (`Modifier.IDF`, the formula bm25s uses), so document frequencies are those of the
points in the collection, however many writers add them. The point id is uuid5 of the stable
chunk id "<doc_id>:<index>"; the payload holds doc_id, index, offsets, page, outlet (and its
outlet_key), date (and `day`, the date as an integer YYYYMMDD, for range filters), title, source.

Everything else stays on local disk in the index directory, written by the default store
(rag/segments.py): the manifest (still the commit point), article texts, chunk offsets, sentence
spans and vectors. Reusing it keeps one layout, its kill -9 guarantees and chunk ids, and every
reader of a passage (text, offsets, sentences) reads a local file, not the network. What that
costs: its segments also hold a flat FAISS file and term counts that searches here do not use
(term counts answer `has_term`; the FAISS file is a copy of vectors.npy, written flat, never HNSW).

Order of a commit: points are upserted (idempotent: same chunk id, same point), then the manifest
is replaced, then the points of articles no longer live are deleted. Searches keep only hits of
the manifest's live articles, so a build killed at any step leaves the committed index answering
as before; the deletes a killed build did not make are listed in the manifest and made by the next.

The BM25 document side is tf / (tf + k1 (1 - b + b len / avg)) with `avg` the average chunk
length of the build that created the collection (recorded in the manifest): Qdrant cannot
recompute stored values as the archive grows, so scores drift slightly from bm25s's exact
statistics as articles are added (a rebuild refreshes it). Terms are hashed to 32-bit indices. Hits
of equal score (the same text in two articles) are put in the order the default store gives them.

Local mode (`QdrantClient(path=<index>/qdrant)`) holds the collection in memory, in one process
at a time: it is for tests and small trials. A server (`url`) is for real archives.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.bm25 import EMPTY_TOKEN, K1, B
from rag.errors import IndexBusyError, IndexMismatchError, RagError, StoreUnavailableError
from rag.lexical import tokenize
from rag.outlets import outlet_key
from rag.segments import SegmentStore
from rag.store import (
    ChunkRef,
    DocumentInfo,
    Filter,
    Manifest,
    NewDocuments,
    Sentences,
    chunk_id,
    rebuild_hint,
    split_chunk_id,
)
from rag.types import Chunk, Document

LOCAL_DIR = "qdrant"  # local mode's files, in the index directory
DENSE = "dense"
SPARSE = "bm25"
UPSERT_BATCH = 256
DELETE_BATCH = 1000
NO_HNSW = 1 << 62  # the local segments' FAISS files are never searched here: never build a graph for them
_POINT_NAMESPACE = uuid.UUID("0d5b2f8e-6b1c-4a57-9a3e-2c1f7e5d9b41")
_HIT_PAYLOAD = ["doc_id", "index"]


def point_id(value: str) -> str:
    """The point id of a chunk id: the same chunk has the same point in every build."""
    return str(uuid.uuid5(_POINT_NAMESPACE, value))


def term_index(term: str) -> int:
    """A term's sparse-vector index: a 32-bit hash, so that any writer agrees without a vocabulary."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8", "surrogatepass"), digest_size=4).digest(), "little")


def sparse_document(text: str, average_length: float) -> tuple[list[int], list[float]]:
    """BM25's document side of `text` (the IDF is Qdrant's): indices and values, summed on hash collisions."""
    tokens = tokenize(text) or [EMPTY_TOKEN]
    norm = K1 * ((1 - B) + B * len(tokens) / average_length)
    values: dict[int, float] = {}
    for term, tf in Counter(tokens).items():
        index = term_index(term)
        values[index] = values.get(index, 0.0) + tf / (tf + norm)
    return list(values), list(values.values())


def sparse_query(terms: Sequence[str]) -> tuple[list[int], list[float]]:
    """Each distinct term once, weight 1 (as bm25s scores a query)."""
    indices = list(dict.fromkeys(term_index(t) for t in terms))
    return indices, [1.0] * len(indices)


def day_number(date: str) -> int | None:
    """ "2024-04-01" -> 20240401; None for an undated article."""
    digits = "".join(c for c in date[:10] if c.isdigit())
    return int(digits) if len(digits) == 8 else None


def _bound(prefix: str, fill: str) -> int:
    """An ISO date prefix ("2024", "2024-04") as the first (fill "0") or last (fill "9") YYYYMMDD it covers."""
    digits = "".join(c for c in prefix[:10] if c.isdigit())[:8]
    return int(digits.ljust(8, fill)) if digits else (0 if fill == "0" else 99999999)


class _Connection:
    """A client and the lock its calls take (local mode is not thread-safe), with errors turned
    into one line for a person."""

    def __init__(self, client: Any, where: str, local: bool) -> None:
        self.client = client
        self.where = where
        self.local = local
        self.lock: contextlib.AbstractContextManager[Any] = threading.Lock() if local else contextlib.nullcontext()

    @contextlib.contextmanager
    def call(self) -> Iterator[Any]:
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        with self.lock:
            try:
                yield self.client
            except RagError:
                raise
            except (UnexpectedResponse, ResponseHandlingException, ConnectionError, TimeoutError) as exc:
                raise StoreUnavailableError(f"Qdrant at {self.where}: {exc}") from exc


_LOCAL: dict[str, _Connection] = {}
_LOCAL_LOCK = threading.Lock()


@atexit.register
def _close_local() -> None:
    """Local mode saves and unlocks on close; at interpreter shutdown its __del__ is too late."""
    with _LOCAL_LOCK:
        for connection in _LOCAL.values():
            with contextlib.suppress(Exception):
                connection.client.close()
        _LOCAL.clear()


def connect(index_dir: Path, url: str | None) -> _Connection:
    """A server's client, or the local-mode client of this index (one per process: local mode
    locks its folder, and a second client in the same process would be refused)."""
    from qdrant_client import QdrantClient

    if url:
        try:
            client = QdrantClient(url=url, timeout=60, check_compatibility=False)
        except ValueError as exc:
            raise StoreUnavailableError(f"Qdrant URL {url!r}: {exc}") from exc
        return _Connection(client, url, local=False)
    path = str((Path(index_dir) / LOCAL_DIR).resolve())
    with _LOCAL_LOCK:
        known = _LOCAL.get(path)
        if known is not None:
            return known
        Path(path).mkdir(parents=True, exist_ok=True)
        try:
            client = QdrantClient(path=path, force_disable_check_same_thread=True)
        except RuntimeError as exc:  # "already accessed by another instance of Qdrant client"
            raise IndexBusyError(
                f"another process has the local Qdrant store in {path} open; local mode serves one process "
                "at a time (use a Qdrant server: `rag index --store qdrant --qdrant-url URL`)"
            ) from exc
        _LOCAL[path] = _Connection(client, path, local=True)
        return _LOCAL[path]


class QdrantStore:
    """The Store protocol on a Qdrant collection, with texts and sentences in local segments."""

    def __init__(
        self, local: SegmentStore, connection: _Connection, collection: str, average_length: float | None
    ) -> None:
        self.directory = local.directory
        self.manifest = local.manifest
        self.local = local
        self.connection = connection
        self.collection = collection
        self.average_length = average_length
        self._drop_after_commit: str | None = None  # a rebuild's previous collection on the same server
        self._positions: dict[str, tuple[int, int]] | None = None

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path, manifest: Manifest, verify: bool = True) -> QdrantStore:
        local = SegmentStore.open(directory, verify=verify, manifest=manifest)
        conf = dict(manifest.settings.get("qdrant") or {})
        if "collection" not in conf:
            raise IndexMismatchError(f"index in {directory} names no Qdrant collection; {rebuild_hint(directory)}")
        connection = connect(directory, conf.get("url"))
        with connection.call() as client:
            exists = client.collection_exists(conf["collection"])
        if not exists:
            raise IndexMismatchError(
                f"index in {directory} is in Qdrant collection {conf['collection']!r}, which {connection.where} "
                f"does not have; {rebuild_hint(directory)}"
            )
        average = conf.get("bm25_average_length")
        return cls(local, connection, str(conf["collection"]), None if average is None else float(average))

    @classmethod
    def empty(cls, directory: Path, model: str, dimension: int, url: str | None) -> QdrantStore:
        """A store of nothing in a new collection; its first commit replaces whatever index
        `directory` has, and drops that index's collection when it is on the same server."""
        from rag.store import read_manifest, store_of

        local = SegmentStore.empty(directory, model, dimension)
        store = cls(local, connect(directory, url), f"rag-{uuid.uuid4().hex[:16]}", None)
        with contextlib.suppress(RagError):
            previous = read_manifest(directory).settings
            if store_of(previous) == ("qdrant", url):
                store._drop_after_commit = (previous.get("qdrant") or {}).get("collection")
        return store

    # -- reading: the local segments -----------------------------------------------------------

    @property
    def size(self) -> int:
        return self.local.size

    @property
    def documents(self) -> Mapping[str, Document]:
        return self.local.documents

    @property
    def sentences(self) -> Sentences:
        return self.local.sentences

    @property
    def outlets(self) -> tuple[str, ...]:
        return self.local.outlets

    @property
    def segment_names(self) -> tuple[str, ...]:
        return self.local.segment_names

    def info(self, doc_id: str) -> DocumentInfo:
        return self.local.info(doc_id)

    def chunk_ids(self) -> Iterator[str]:
        return self.local.chunk_ids()

    def ref(self, chunk_id: str) -> ChunkRef:
        return self.local.ref(chunk_id)

    def chunk(self, chunk_id: str) -> Chunk:
        return self.local.chunk(chunk_id)

    def vectors(self, chunk_ids: Sequence[str]) -> np.ndarray:
        return self.local.vectors(chunk_ids)

    def has_term(self, term: str) -> bool:
        return self.local.has_term(term)

    def document_frequencies(self, terms: Sequence[str]) -> np.ndarray:
        return self.local.document_frequencies(terms)

    # -- searching: Qdrant ---------------------------------------------------------------------

    def dense_search(self, vector: np.ndarray, k: int, where: Filter | None = None) -> list[tuple[str, float]]:
        from qdrant_client import models

        condition = self._condition(where)
        if k <= 0 or not self.size or condition is False:
            return []
        params = None if self.connection.local else models.SearchParams(hnsw_ef=max(128, 2 * k))
        with self.connection.call() as client:
            found = client.query_points(
                self.collection,
                query=np.asarray(vector, np.float32).reshape(-1).tolist(),
                using=DENSE,
                query_filter=condition,
                search_params=params,
                limit=k,
                with_payload=_HIT_PAYLOAD,
            ).points
        return self._in_row_order(self._live_hits(found), rows_descending=True)

    def lexical_search(self, terms: Sequence[str], k: int, where: Filter | None = None) -> list[tuple[str, float]]:
        from qdrant_client import models

        condition = self._condition(where)
        indices, values = sparse_query(terms)
        if k <= 0 or not indices or not self.size or condition is False:
            return []
        with self.connection.call() as client:
            found = client.query_points(
                self.collection,
                query=models.SparseVector(indices=indices, values=values),
                using=SPARSE,
                query_filter=condition,
                limit=k,
                with_payload=_HIT_PAYLOAD,
            ).points
        return self._in_row_order([(cid, score) for cid, score in self._live_hits(found) if score > 0])

    def lexical_scores(self, terms: Sequence[str], chunk_ids: Sequence[str]) -> np.ndarray:
        """The scores lexical_search gives these chunks (one query restricted to their points)."""
        from qdrant_client import models

        out = np.zeros(len(chunk_ids), np.float32)
        indices, values = sparse_query(terms)
        if not indices or not len(chunk_ids):
            return out
        position: dict[str, list[int]] = {}
        for i, cid in enumerate(chunk_ids):
            position.setdefault(cid, []).append(i)
        only = models.Filter(must=[models.HasIdCondition(has_id=[point_id(c) for c in position])])
        with self.connection.call() as client:
            found = client.query_points(
                self.collection,
                query=models.SparseVector(indices=indices, values=values),
                using=SPARSE,
                query_filter=only,
                limit=len(position),
                with_payload=_HIT_PAYLOAD,
            ).points
        for cid, score in self._live_hits(found):
            out[position[cid]] = score
        return out

    def _in_row_order(self, hits: list[tuple[str, float]], rows_descending: bool = False) -> list[tuple[str, float]]:
        """Equal scores (the same text twice) in the order the default store gives them, so that both
        stores rank alike: by segment, then by row, descending for FAISS's dense search."""
        if len({score for _, score in hits}) == len(hits):
            return hits
        if self._positions is None:  # the manifest lists articles in segment and row order
            segment = {s["name"]: i for i, s in enumerate(self.manifest.segments)}
            self._positions = {
                doc_id: (segment.get(entry["segment"], 0), i)
                for i, (doc_id, entry) in enumerate(self.manifest.documents.items())
            }
        sign = -1 if rows_descending else 1

        def key(hit: tuple[str, float]) -> tuple[float, int, int, int]:
            doc_id, index = split_chunk_id(hit[0])
            segment, article = self._positions[doc_id] if self._positions else (0, 0)
            return (-hit[1], segment, sign * article, sign * index)

        return sorted(hits, key=key)

    def _live_hits(self, points: Sequence[Any]) -> list[tuple[str, float]]:
        """(chunk id, score) of the hits of live chunks: points a killed build upserted or has not
        deleted yet are not in the manifest, and are left out."""
        documents = self.manifest.documents
        hits = []
        for point in points:
            payload = point.payload or {}
            doc_id, index = payload.get("doc_id"), payload.get("index")
            if not isinstance(doc_id, str) or not isinstance(index, int):
                continue
            entry = documents.get(doc_id)
            if entry is not None and 0 <= index < int(entry["chunks"]):
                hits.append((chunk_id(doc_id, index), float(point.score)))
        return hits

    def _condition(self, where: Filter | None) -> Any:
        """The Qdrant filter of `where` (None: every point; False: no point can match)."""
        from qdrant_client import models

        if where is None:
            return None
        must: list[Any] = []
        if where.outlets is not None:
            if not where.outlets:
                return False
            must.append(models.FieldCondition(key="outlet_key", match=models.MatchAny(any=sorted(where.outlets))))
        if where.since is not None or where.until is not None:
            window = models.FieldCondition(
                key="day",
                range=models.Range(
                    gte=_bound(where.since, "0") if where.since is not None else None,
                    lte=_bound(where.until, "9") if where.until is not None else None,
                ),
            )
            if where.undated:  # an article without a date has no `day`
                undated = models.IsEmptyCondition(is_empty=models.PayloadField(key="day"))
                must.append(models.Filter(should=[window, undated]))
            else:
                must.append(window)
        return models.Filter(must=must) if must else None

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
        """Upsert the added articles' points, commit the manifest (rag/segments.py), then delete the
        points of articles no longer live. `hnsw_min_chunks` is the server's business here."""
        deleted = set(delete)
        if missing := deleted - self.manifest.documents.keys():
            raise KeyError(f"not in the index: {sorted(missing)[:3]}")
        added = {d.doc_id for d in add.documents} if add is not None else set()
        if clash := added & (self.manifest.documents.keys() - deleted):
            raise KeyError(f"already in the index: {sorted(clash)[:3]}")
        dimension = self.manifest.dimension or (int(add.vectors.shape[1]) if add is not None else 0)
        self._ensure_collection(dimension)
        if add is not None and len(add.chunks):
            if self.average_length is None:
                lengths = [len(tokenize(t) or [EMPTY_TOKEN]) for t in add.lexical_texts]
                self.average_length = float(np.mean(lengths))
            self._upsert(add)
        live = (self.manifest.documents.keys() - deleted) | added
        pending = (set(self.manifest.stats.get("qdrant_deletes", ())) | deleted) - live
        own = {
            "store": "qdrant",
            "qdrant": {
                "url": None if self.connection.local else self.connection.where,
                "collection": self.collection,
                "bm25_average_length": self.average_length,
            },
        }
        manifest = self.local.apply(
            add,
            delete,
            settings={**settings, **own},
            stats={**stats, "qdrant_deletes": sorted(pending)},
            hnsw_min_chunks=NO_HNSW,
            merge=merge,
        )
        self._delete_points(sorted(pending))
        if self._drop_after_commit and self._drop_after_commit != self.collection:
            with self.connection.call() as client:
                client.delete_collection(self._drop_after_commit)
            self._drop_after_commit = None
        return manifest

    def compact(self, hnsw_min_chunks: int) -> Manifest:
        """Merge the local segments (the collection needs no compaction: Qdrant deletes points)."""
        return self.local.compact(NO_HNSW)

    def _ensure_collection(self, dimension: int) -> None:
        from qdrant_client import models

        with self.connection.call() as client:
            if client.collection_exists(self.collection):
                return
            client.create_collection(
                self.collection,
                vectors_config={DENSE: models.VectorParams(size=max(1, dimension), distance=models.Distance.COSINE)},
                sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            )
            if not self.connection.local:  # local mode has no payload indexes (and warns)
                for field, schema in (
                    ("doc_id", models.PayloadSchemaType.KEYWORD),
                    ("outlet_key", models.PayloadSchemaType.KEYWORD),
                    ("day", models.PayloadSchemaType.INTEGER),
                ):
                    client.create_payload_index(self.collection, field, field_schema=schema)

    def _upsert(self, add: NewDocuments) -> None:
        from qdrant_client import models

        assert self.average_length is not None
        by_id = {d.doc_id: d for d in add.documents}
        for lo in range(0, len(add.chunks), UPSERT_BATCH):
            chunks = add.chunks[lo : lo + UPSERT_BATCH]
            sparse: list[Any] = [
                models.SparseVector(indices=i, values=v)
                for i, v in (sparse_document(t, self.average_length) for t in add.lexical_texts[lo : lo + len(chunks)])
            ]
            payloads = [_payload(c, by_id[c.doc_id]) for c in chunks]
            batch = models.Batch(
                ids=[point_id(chunk_id(c.doc_id, c.index)) for c in chunks],
                vectors={DENSE: np.asarray(add.vectors[lo : lo + len(chunks)], np.float32).tolist(), SPARSE: sparse},
                payloads=payloads,
            )
            with self.connection.call() as client:
                client.upsert(self.collection, points=batch, wait=True)

    def _delete_points(self, doc_ids: Sequence[str]) -> None:
        from qdrant_client import models

        for lo in range(0, len(doc_ids), DELETE_BATCH):
            match = models.MatchAny(any=list(doc_ids[lo : lo + DELETE_BATCH]))
            only = models.Filter(must=[models.FieldCondition(key="doc_id", match=match)])
            selector = models.FilterSelector(filter=only)
            with self.connection.call() as client:
                client.delete(self.collection, points_selector=selector, wait=True)


def _payload(chunk: Chunk, doc: Document) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "doc_id": chunk.doc_id,
        "index": chunk.index,
        "start": chunk.start,
        "end": chunk.end,
        "page": chunk.page,
        "outlet_key": outlet_key(doc.outlet),
        "outlet": doc.outlet,
        "date": doc.date,
        "title": doc.title,
        "source": doc.source,
    }
    day = day_number(doc.date)
    if day is not None:  # no `day` at all: what IsEmptyCondition finds for an undated article
        payload["day"] = day
    return payload
