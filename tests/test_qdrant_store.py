"""The Qdrant store (rag/qdrant_store.py) in qdrant-client's local mode: what retrieval and the
build need of a store, checked against the default store on the same articles, and the retrieval
and index tests of test_retrieve.py and test_index.py run again with Qdrant as the default store."""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

pytest.importorskip("qdrant_client", reason="the qdrant extra is not installed (pip install -e '.[qdrant]')")

import test_index  # noqa: E402
import test_retrieve  # noqa: E402

import rag.index  # noqa: E402
from rag.cli import main  # noqa: E402
from rag.embed import HashEmbedder  # noqa: E402
from rag.errors import StoreUnavailableError  # noqa: E402
from rag.index import BuildSettings, build_index, compact_index  # noqa: E402
from rag.lexical import tokenize  # noqa: E402
from rag.outlets import outlet_key  # noqa: E402
from rag.qdrant_store import QdrantStore, connect, point_id  # noqa: E402
from rag.retrieve import Retriever, get_retriever  # noqa: E402
from rag.segments import SegmentStore  # noqa: E402
from rag.store import Filter, load_index, read_manifest  # noqa: E402

if TYPE_CHECKING:
    from conftest import CountingEmbedder

QDRANT = BuildSettings(store="qdrant")
QUESTIONS = (
    "How many tents did Israel order from China?",
    "How many Hamas fighters are believed to be in Rafah?",
    "Who led the American side of the meeting?",
    "hostage negotiations in Cairo",
)
JNS = "000_7d35695503e2d372.txt"


def build(sources: Path, index_dir: Path, embedder: Any = None, **kwargs: Any) -> rag.index.BuildReport:
    return build_index([sources], index_dir, embedder=embedder or HashEmbedder(), **kwargs)


def points(index_dir: Path) -> dict[str, dict[str, Any]]:
    """Every point of the index's collection: id -> payload."""
    conf = read_manifest(index_dir).settings["qdrant"]
    with connect(index_dir, None).call() as client:
        found, _ = client.scroll(conf["collection"], limit=100_000, with_payload=True)
    return {str(p.id): dict(p.payload or {}) for p in found}


def ranking(hits: list[tuple[str, float]]) -> list[tuple[float, str]]:
    """Scores to 4 digits, best first, ties in id order (float32 sums tie in either order; at 5 digits,
    BM25 b 0.6 put one score on a rounding edge: 2.29767 against 2.29768)."""
    return sorted((-round(score, 4), cid) for cid, score in hits)


@pytest.fixture
def qdrant_index(corpus_dir: Path, tmp_path: Path) -> Path:
    index = tmp_path / "qdrant-index"
    build(corpus_dir, index, settings=QDRANT)
    return index


def test_the_store_is_recorded_and_opened_without_a_flag(qdrant_index: Path) -> None:
    settings = read_manifest(qdrant_index).settings
    assert settings["store"] == "qdrant" and settings["qdrant"]["url"] is None
    assert (qdrant_index / "qdrant").is_dir()  # local mode, in the index directory
    assert isinstance(load_index(qdrant_index), QdrantStore)
    passages = get_retriever(qdrant_index).search(QUESTIONS[0], k=5)
    assert any("40,000 tents" in p.text for p in passages)


def test_points_are_chunks_with_stable_ids_and_payload(qdrant_index: Path, fake_index: Path) -> None:
    """Chunk ids equal the default store's for the same articles; one point per chunk, its id
    uuid5 of the chunk id, its payload what filters and a reader of the collection need."""
    stored, faiss_store = load_index(qdrant_index), load_index(fake_index)
    ids = list(stored.chunk_ids())
    assert ids == list(faiss_store.chunk_ids())
    found = points(qdrant_index)
    assert set(found) == {point_id(c) for c in ids} and all(uuid.UUID(p).version == 5 for p in found)
    payload = found[point_id(ids[3])]
    ref, info = stored.ref(ids[3]), stored.info(stored.ref(ids[3]).doc_id)
    assert payload == {
        "doc_id": ref.doc_id,
        "index": ref.index,
        "start": ref.start,
        "end": ref.end,
        "page": ref.page,
        "outlet_key": outlet_key(info.outlet),
        "outlet": info.outlet,
        "date": info.date,
        "title": info.title,
        "source": info.source,
        **({"day": int(info.date.replace("-", ""))} if info.date else {}),
    }


def test_searches_equal_the_default_store(qdrant_index: Path, fake_index: Path) -> None:
    """Same articles, same vectors: the same dense and BM25 rankings and scores, and the same passages."""
    q, f = load_index(qdrant_index), load_index(fake_index)
    embedder = HashEmbedder()
    for question in QUESTIONS:
        vector = embedder.encode([question])[0]
        dense_q, dense_f = q.dense_search(vector, 10), f.dense_search(vector, 10)
        assert ranking(dense_q) == ranking(dense_f)
        terms = tokenize(question)
        lexical_q, lexical_f = q.lexical_search(terms, 10), f.lexical_search(terms, 10)
        assert ranking(lexical_q) == ranking(lexical_f)
        some = [c for c, _ in lexical_f[:3]] + [c for c, _ in dense_f[-3:]]
        np.testing.assert_allclose(q.lexical_scores(terms, some), f.lexical_scores(terms, some), rtol=1e-5)
        got = [(p.chunk_id, p.text) for p in Retriever(q, embedder).search(question, k=5)]
        assert got == [(p.chunk_id, p.text) for p in Retriever(f, embedder).search(question, k=5)]
    assert q.has_term("tent") and not q.has_term("zyzzyvance")


def test_equal_scores_rank_as_in_the_default_store(tmp_path: Path, write_article: Callable[..., Path]) -> None:
    """The same report from four outlets ties exactly: both stores order the ties alike."""
    for n in range(4):
        write_article(
            tmp_path / "wire" / f"{n}.txt",
            "The port handled 120 aid trucks on Monday, the harbour office said.",
            title="Aid trucks",
            outlet=f"Outlet {n}",
        )
    build(tmp_path / "wire", tmp_path / "q", settings=QDRANT)
    build(tmp_path / "wire", tmp_path / "f")
    q, f = load_index(tmp_path / "q"), load_index(tmp_path / "f")
    vector = HashEmbedder().encode(["aid trucks at the port"])[0]
    terms = tokenize("aid trucks at the port")
    assert len({s for _, s in f.dense_search(vector, 4)}) == 1  # a tie
    assert [c for c, _ in q.dense_search(vector, 4)] == [c for c, _ in f.dense_search(vector, 4)]
    assert [c for c, _ in q.lexical_search(terms, 4)] == [c for c, _ in f.lexical_search(terms, 4)]


@pytest.fixture
def dated_corpus(tmp_path: Path, write_article: Callable[..., Path]) -> Path:
    """Six articles about one harbour, from three outlets, dated across 2024 (two undated)."""
    corpus = tmp_path / "dated"
    days = {"a": "2024-01-15", "b": "2024-03-02", "c": "2024-03-30", "d": "2024-06-01", "e": "", "f": ""}
    for n, (name, day) in enumerate(days.items()):
        extra = {"date": day} if day else {}
        write_article(
            corpus / f"{name}.txt",
            f"The harbour crane number {n} lifted cargo at the ferry berth. Dockers said the storm "
            f"delayed the tide schedule by {n + 2} hours, and the pier {name} stayed closed.",
            title=f"Harbour report {name}",
            outlet=["Port News", "Coast Daily", "Bay Times"][n % 3],
            **extra,
        )
    return corpus


FILTERS = [
    Filter(outlets=frozenset({outlet_key("Port News")})),
    Filter(outlets=frozenset({outlet_key("Coast Daily"), outlet_key("Bay Times")})),
    Filter(outlets=frozenset()),
    Filter(since="2024-03"),
    Filter(since="2024-03", undated=False),
    Filter(until="2024-03-02", undated=False),
    Filter(since="2024-03", until="2024-03"),
    Filter(since="2024-03", until="2024-03", undated=False),
    Filter(until="2023"),
    Filter(since="2024", outlets=frozenset({outlet_key("Bay Times")}), undated=False),
]


@pytest.mark.parametrize("where", FILTERS, ids=repr)
def test_outlet_and_date_filters(dated_corpus: Path, tmp_path: Path, where: Filter) -> None:
    build(dated_corpus, tmp_path / "q", settings=QDRANT)
    build(dated_corpus, tmp_path / "f")
    q, f = load_index(tmp_path / "q"), load_index(tmp_path / "f")
    expected_docs = set()
    for doc_id in q.documents:
        info = q.info(doc_id)
        ok = where.outlets is None or outlet_key(info.outlet) in where.outlets
        if where.since or where.until:
            if not info.date:
                ok = ok and where.undated
            else:
                ok = ok and (where.since is None or info.date[: len(where.since)] >= where.since)
                ok = ok and (where.until is None or info.date[: len(where.until)] <= where.until)
        if ok:
            expected_docs.add(doc_id)
    vector = HashEmbedder().encode(["harbour crane storm"])[0]
    terms = tokenize("harbour crane storm pier")
    for store in (q, f):
        assert {store.ref(c).doc_id for c, _ in store.dense_search(vector, 50, where)} == expected_docs
        assert {store.ref(c).doc_id for c, _ in store.lexical_search(terms, 50, where)} == expected_docs
    assert [c for c, _ in q.dense_search(vector, 50, where)] == [c for c, _ in f.dense_search(vector, 50, where)]


def test_undated_articles_pass_date_filters_unless_asked(dated_corpus: Path, tmp_path: Path) -> None:
    build(dated_corpus, tmp_path / "q", settings=QDRANT)
    store = load_index(tmp_path / "q")
    vector = HashEmbedder().encode(["harbour"])[0]

    def titles(where: Filter) -> set[str]:
        return {store.info(store.ref(c).doc_id).title[-1] for c, _ in store.dense_search(vector, 50, where)}

    assert titles(Filter(since="2024-03", until="2024-03")) == {"b", "c", "e", "f"}
    assert titles(Filter(since="2024-03", until="2024-03", undated=False)) == {"b", "c"}
    assert titles(Filter(undated=False)) == set("abcdef")  # no window: undated is not a filter


def test_update_replaces_and_removes_articles(
    qdrant_index: Path, corpus_dir: Path, embedder: CountingEmbedder, write_article: Callable[..., Path]
) -> None:
    before = {p["doc_id"] for p in points(qdrant_index).values()}
    path = corpus_dir / JNS
    old_doc = next(i for i, d in read_manifest(qdrant_index).documents.items() if d["source"] == str(path))
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("\n\n", "\n\nThe okapi negotiators met again on Tuesday.\n\n", 1), encoding="utf-8")
    removed = corpus_dir / "002_99735604145fecb3.txt"
    removed_doc = next(i for i, d in read_manifest(qdrant_index).documents.items() if d["source"] == str(removed))
    removed.unlink()
    write_article(corpus_dir / "extra.txt", "A new pier opened in the harbour.", title="Pier", outlet="Extra News")
    report = build(corpus_dir, qdrant_index, embedder)
    assert report.updated == (str(path),) and report.removed == (str(removed),)
    assert report.added == (str(corpus_dir / "extra.txt"),)
    # Only the changed and added articles were embedded; the store stayed Qdrant.
    assert all("okapi" in t or "pier" in t.lower() or "Pier" in t for t in embedder.texts if "Tuesday" in t)
    stored = load_index(qdrant_index)
    assert isinstance(stored, QdrantStore)
    live = {p["doc_id"] for p in points(qdrant_index).values()}
    assert live == set(stored.documents) and old_doc not in live and removed_doc not in live
    assert live - before == set(stored.documents) - before and len(live - before) == 2
    assert {pid for pid in points(qdrant_index)} == {point_id(c) for c in stored.chunk_ids()}
    hits = get_retriever(qdrant_index).search("okapi negotiators met again", k=10)
    assert all(p.doc_id not in (old_doc, removed_doc) for p in hits)
    assert [p.source for p in hits if "okapi" in p.text] == [str(path)]
    assert get_retriever(qdrant_index).search("new pier opened in the harbour", k=1)[0].outlet == "Extra News"


def test_compaction_and_rebuild_keep_chunk_ids_and_results(
    qdrant_index: Path, corpus_dir: Path, write_article: Callable[..., Path], embedder: CountingEmbedder
) -> None:
    write_article(corpus_dir / "extra.txt", "A new pier opened in the harbour.", title="Pier", outlet="Extra News")
    build(corpus_dir, qdrant_index)
    ids = list(load_index(qdrant_index).chunk_ids())
    results = [[p.chunk_id for p in get_retriever(qdrant_index).search(q, k=5)] for q in QUESTIONS]
    assert len(read_manifest(qdrant_index).segments) == 2
    compact_index(qdrant_index)
    assert len(read_manifest(qdrant_index).segments) == 1
    assert list(load_index(qdrant_index).chunk_ids()) == ids
    assert [[p.chunk_id for p in get_retriever(qdrant_index).search(q, k=5)] for q in QUESTIONS] == results

    old_collection = read_manifest(qdrant_index).settings["qdrant"]["collection"]
    report = build(corpus_dir, qdrant_index, embedder, rebuild=True)
    assert report.embedded == report.chunks  # everything embedded again
    new_collection = read_manifest(qdrant_index).settings["qdrant"]["collection"]
    assert new_collection != old_collection
    with connect(qdrant_index, None).call() as client:
        assert not client.collection_exists(old_collection)  # dropped once the new one was committed
    assert sorted(load_index(qdrant_index).chunk_ids()) == sorted(ids)
    assert [[p.chunk_id for p in get_retriever(qdrant_index).search(q, k=5)] for q in QUESTIONS] == results


def test_moving_between_stores_embeds_nothing(fake_index: Path, corpus_dir: Path, embedder: CountingEmbedder) -> None:
    before = [[p.chunk_id for p in get_retriever(fake_index).search(q, k=5)] for q in QUESTIONS]
    report = build(corpus_dir, fake_index, embedder, settings=QDRANT)
    assert report.embedded == 0 and report.sentences_embedded == 0 and not embedder.texts
    assert isinstance(load_index(fake_index), QdrantStore)
    assert [[p.chunk_id for p in get_retriever(fake_index).search(q, k=5)] for q in QUESTIONS] == before
    build(corpus_dir, fake_index, embedder, settings=BuildSettings(store="segments"))
    assert isinstance(load_index(fake_index), SegmentStore) and not embedder.texts
    assert [[p.chunk_id for p in get_retriever(fake_index).search(q, k=5)] for q in QUESTIONS] == before


def test_a_build_killed_before_its_commit_leaves_the_index_answering_as_before(
    qdrant_index: Path, corpus_dir: Path, write_article: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = [[p.chunk_id for p in get_retriever(qdrant_index).search(q, k=5)] for q in QUESTIONS]
    generation = read_manifest(qdrant_index).generation
    write_article(corpus_dir / "extra.txt", "Hamas fighters tents Rafah Cairo.", title="Tents", outlet="Extra News")

    def killed(*args: object, **kwargs: object) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(SegmentStore, "apply", killed)  # after the upsert, before the manifest
    with pytest.raises(RuntimeError):
        build(corpus_dir, qdrant_index)
    monkeypatch.undo()
    assert read_manifest(qdrant_index).generation == generation
    assert len({p["doc_id"] for p in points(qdrant_index).values()}) == 6  # the new article's points are there...
    fresh = Retriever(load_index(qdrant_index), HashEmbedder())
    assert [[p.chunk_id for p in fresh.search(q, k=5)] for q in QUESTIONS] == before  # ...and never returned
    build(corpus_dir, qdrant_index)
    assert any(p.outlet == "Extra News" for p in get_retriever(qdrant_index).search("Hamas fighters tents", k=5))


def test_deletes_a_killed_build_did_not_make_are_made_by_the_next(
    qdrant_index: Path, corpus_dir: Path, write_article: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    removed = corpus_dir / JNS
    removed_doc = next(i for i, d in read_manifest(qdrant_index).documents.items() if d["source"] == str(removed))
    removed.unlink()

    def killed(*args: object, **kwargs: object) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(QdrantStore, "_delete_points", killed)  # after the manifest, before the deletes
    with pytest.raises(RuntimeError):
        build(corpus_dir, qdrant_index)
    monkeypatch.undo()
    assert removed_doc not in read_manifest(qdrant_index).documents
    assert read_manifest(qdrant_index).stats["qdrant_deletes"] == [removed_doc]
    assert any(p["doc_id"] == removed_doc for p in points(qdrant_index).values())
    hits = get_retriever(qdrant_index).search("How many tents did Israel order from China?", k=10)
    assert hits and all(p.doc_id != removed_doc for p in hits)
    write_article(corpus_dir / "extra.txt", "A new pier opened in the harbour.", title="Pier", outlet="Extra News")
    build(corpus_dir, qdrant_index)
    assert not any(p["doc_id"] == removed_doc for p in points(qdrant_index).values())


def test_cli_builds_in_qdrant_and_later_commands_need_no_flag(
    corpus_dir: Path, index_dir: Path, fake_default_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["index", str(corpus_dir), "--index-dir", str(index_dir), "--store", "qdrant", "-q"]) == 0
    assert read_manifest(index_dir).settings["store"] == "qdrant"
    (corpus_dir / JNS).unlink()
    assert main(["index", "--index-dir", str(index_dir), "-q"]) == 0  # an update keeps the store
    assert read_manifest(index_dir).settings["store"] == "qdrant" and len(read_manifest(index_dir).documents) == 4
    capsys.readouterr()
    assert main(["search", "Who led the American side of the meeting?", "--index-dir", str(index_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)
    assert main(["index", "--index-dir", str(index_dir), "--store", "segments", "--qdrant-url", "http://x", "-q"]) == 1
    assert "--qdrant-url is for --store qdrant" in capsys.readouterr().err


def test_an_unreachable_server_is_one_clear_line(
    corpus_dir: Path, index_dir: Path, fake_default_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "http://127.0.0.1:9"  # the discard port: nothing listens there
    with pytest.raises(StoreUnavailableError, match="Qdrant at http://127.0.0.1:9"):
        build(corpus_dir, index_dir, settings=BuildSettings(store="qdrant", qdrant_url=url))
    assert not (index_dir / "manifest.json").exists()
    assert main(["index", str(corpus_dir), "--index-dir", str(index_dir), "--qdrant-url", url, "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Qdrant at http://127.0.0.1:9") and err.count("\n") == 1


# -- the retrieval and index tests, again with Qdrant as the default store --------------------------------

# Tests of things only the default store has (its files, its format history), or that need a
# parametrised fixture, are left out.
_SKIP = {
    "test_index_of_a_monolithic_format_is_updated_without_embedding_again",  # older formats are segment files
    "test_index_of_an_older_format_is_updated_without_embedding_again",
    "test_hnsw_index_searches_and_filters",  # FAISS's HNSW
}


def _tests_of(module: Any) -> list[Any]:
    out = []
    for name, function in inspect.getmembers(module, inspect.isfunction):
        if not name.startswith("test_") or name in _SKIP or function.__module__ != module.__name__:
            continue
        marks = {m.name for m in getattr(function, "pytestmark", [])}
        if marks & {"slow", "browser", "parametrize"}:
            continue
        out.append(pytest.param(function, id=f"{module.__name__}.{name}"))
    return out


@pytest.mark.parametrize("check", [*_tests_of(test_retrieve), *_tests_of(test_index)])
def test_retrieval_and_index_tests_pass_on_qdrant(
    check: Callable[..., None], request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rag.index, "DEFAULT_STORE", "qdrant")
    arguments = {name: request.getfixturevalue(name) for name in inspect.signature(check).parameters}
    check(**arguments)
    for value in arguments.values():  # every index the test built is a Qdrant one
        if isinstance(value, Path) and (value / "manifest.json").exists():
            assert read_manifest(value).settings["store"] == "qdrant"
