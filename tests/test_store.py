"""rag/store.py and rag/segments.py: the on-disk format, the manifest as the commit point, checksums, cleanup,
the lock; segments, tombstones, compaction, stable chunk ids, BM25 across segments."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np
import pytest

from rag.embed import HashEmbedder
from rag.errors import IndexBusyError, IndexMismatchError, IndexMissingError
from rag.index import build_index, compact_index
from rag.lexical import LexicalIndex, tokenize
from rag.outlets import outlet_key
from rag.retrieve import Retriever, get_retriever
from rag.segments import MAX_SEGMENTS, SegmentStore
from rag.store import (
    FORMAT_VERSION,
    MANIFEST,
    Filter,
    NewDocuments,
    SentenceTable,
    build_lock,
    load_index,
    read_manifest,
)
from rag.types import Chunk, Document

QUESTION = "How many tents did Israel order from China?"


def _manifest(index_dir: Path) -> dict:
    return json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))


def _index_files(index_dir: Path) -> set[str]:
    return {p.name for p in index_dir.iterdir() if p.name != ".lock"}


def _segment(index_dir: Path) -> Path:
    """The directory of the index's newest segment."""
    return index_dir / _manifest(index_dir)["segments"][-1]["name"]


def _results(index_dir: Path) -> list[tuple[str, int, int]]:
    retriever = Retriever(load_index(index_dir), HashEmbedder())
    return [(p.source, p.start, p.end) for p in retriever.search(QUESTION, k=5)]


def test_layout_is_json_lines_npy_faiss_and_term_counts(fake_index: Path) -> None:
    manifest = _manifest(fake_index)
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["model"] == "hash:256" and manifest["dimension"] == 256
    [segment] = manifest["segments"]
    assert _index_files(fake_index) == {MANIFEST, segment["name"]}
    seg = fake_index / segment["name"]
    assert (seg / "terms").is_dir()

    documents = [json.loads(line) for line in (seg / "documents.jsonl").read_text("utf-8").splitlines()]
    chunks = [json.loads(line) for line in (seg / "chunks.jsonl").read_text("utf-8").splitlines()]
    # The segment lists its articles (meta.json); the manifest lists segments, not articles.
    listed = json.loads((seg / "meta.json").read_text("utf-8"))["documents"]
    assert [d["doc_id"] for d in listed] == [d["doc_id"] for d in documents] and "documents" not in manifest
    assert set(read_manifest(fake_index).documents) == {d["doc_id"] for d in documents}
    texts = {d["doc_id"]: d["text"] for d in documents}
    for chunk in chunks:
        assert texts[chunk["doc_id"]][chunk["start"] : chunk["end"]] == chunk["text"]

    vectors = np.load(seg / "vectors.npy", allow_pickle=False)
    assert vectors.dtype == np.float32 and vectors.shape == (len(chunks), 256)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert faiss.read_index(str(seg / "dense.faiss")).ntotal == len(chunks)
    table = np.load(seg / "chunk-table.npy", allow_pickle=False)
    assert table.shape == (len(chunks), 5) and [c["start"] for c in chunks] == table[:, 2].tolist()

    for path in (seg / "terms").iterdir():
        assert path.suffix in (".npy", ".json")
        np.load(path, allow_pickle=False) if path.suffix == ".npy" else json.loads(path.read_text(encoding="utf-8"))


def test_nothing_is_pickled(fake_index: Path) -> None:
    for path in fake_index.rglob("*"):
        if path.is_file() and path.name != ".lock":
            head = path.read_bytes()[:2]
            assert not (head[:1] == b"\x80" and head[1:2] in b"\x02\x03\x04\x05"), f"{path} looks like a pickle"


def test_manifest_checksums_cover_every_segment_file(fake_index: Path) -> None:
    files = read_manifest(fake_index).files
    on_disk = {
        str(p.relative_to(fake_index))
        for p in fake_index.rglob("*")
        if p.is_file() and p.name not in (MANIFEST, ".lock")
    }
    assert set(files) == on_disk
    for name, digest in files.items():
        assert hashlib.sha256((fake_index / name).read_bytes()).hexdigest() == digest


def test_missing_index_says_how_to_build(index_dir: Path) -> None:
    with pytest.raises(IndexMissingError, match="rag index"):
        load_index(index_dir)


def test_adding_an_article_reads_no_faiss_index_or_vocabulary(
    fake_index: Path, corpus_dir: Path, write_article
) -> None:
    """Their reading grows with the archive: the open behind a build reads them only for a search
    (here they are unreadable, same size, so only a checksum would tell), which then says so in one line."""
    segment = _segment(fake_index)
    for name in ("dense.faiss", "terms/vocab.json"):
        path = segment / name
        path.write_bytes(b"\0" * path.stat().st_size)
    new = write_article(corpus_dir / "extra.txt", "A new pier opened in the harbour.", title="Pier", outlet="Pier")
    report = build_index([corpus_dir], fake_index, embedder=HashEmbedder())
    assert report.added == (str(new),) and len(read_manifest(fake_index).segments) == 2
    store = load_index(fake_index, verify=False)
    with pytest.raises(IndexMismatchError, match=r"damaged.*rag index --rebuild") as caught:
        store.dense_search(np.ones(256, np.float32) / 16, 5)
    assert "\n" not in str(caught.value)
    with pytest.raises(IndexMismatchError, match=r"damaged.*rag index --rebuild"):
        store.lexical_search(["pier"], 5)
    with pytest.raises(IndexMismatchError, match="checksum"):
        load_index(fake_index)


def test_uncommitted_generation_is_invisible(fake_index: Path, corpus_dir: Path) -> None:
    """Files of a generation the manifest does not name (a killed build) change nothing."""
    before = _results(fake_index)
    generation = _manifest(fake_index)["generation"]
    leftover = fake_index / f"seg-{generation + 1}"
    leftover.mkdir()
    for name in ("vectors.npy", "meta.json", "documents.jsonl"):
        (leftover / name).write_bytes(b"half-written junk")
    (fake_index / f"{MANIFEST}.tmp-99999").write_text("{", encoding="utf-8")

    assert load_index(fake_index).manifest.generation == generation
    assert _results(fake_index) == before

    # The next build overwrites the leftovers and cleans up the stray temporary manifest.
    (corpus_dir / "000_7d35695503e2d372.txt").unlink()
    report = build_index([corpus_dir], fake_index, embedder=HashEmbedder())
    assert report.removed and load_index(fake_index).manifest.generation == generation + 1
    assert not any(name.startswith(f"{MANIFEST}.tmp-") for name in _index_files(fake_index))


def test_failure_before_the_manifest_replace_keeps_the_old_index(
    fake_index: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _results(fake_index)
    generation = _manifest(fake_index)["generation"]
    (corpus_dir / "001_d7804dc54d9443d6.txt").unlink()

    real_replace = os.replace

    def fail(src: str, dst: str | Path, **kwargs: object) -> None:
        if Path(dst).name == MANIFEST:
            raise OSError("disk full")
        real_replace(src, dst, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        build_index([corpus_dir], fake_index, embedder=HashEmbedder())
    monkeypatch.undo()

    assert load_index(fake_index).manifest.generation == generation
    assert _results(fake_index) == before
    report = build_index([corpus_dir], fake_index, embedder=HashEmbedder())
    assert len(report.removed) == 1 and load_index(fake_index).manifest.generation == generation + 1


@pytest.mark.parametrize(
    "part", ["documents.jsonl", "chunk-table.npy", "vectors.npy", "dense.faiss", "terms", "meta.json"]
)
def test_truncated_file_is_detected_with_rebuild_hint(fake_index: Path, corpus_dir: Path, part: str) -> None:
    path = _segment(fake_index) / part
    if path.is_dir():
        path = max(path.iterdir(), key=lambda p: p.stat().st_size)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(IndexMismatchError) as caught:
        load_index(fake_index)
    message = str(caught.value)
    assert "rag index --rebuild" in message and str(fake_index) in message
    with pytest.raises(IndexMismatchError, match="rebuild"):
        get_retriever(fake_index)

    # Following the hint repairs the index.
    report = build_index([corpus_dir], fake_index, rebuild=True, embedder=HashEmbedder())
    assert report.embedded == report.chunks > 0
    assert load_index(fake_index).size == report.chunks


def test_edited_file_is_detected(fake_index: Path) -> None:
    """An edit that keeps the file well-formed is still caught by its checksum."""
    path = _segment(fake_index) / "documents.jsonl"
    text = path.read_text(encoding="utf-8")
    assert "Rafah" in text
    path.write_text(text.replace("Rafah", "Rafax", 1), encoding="utf-8")
    with pytest.raises(IndexMismatchError, match="checksum.*rag index --rebuild"):
        load_index(fake_index)


def test_deleted_file_is_detected(fake_index: Path) -> None:
    (_segment(fake_index) / "vectors.npy").unlink()
    with pytest.raises(IndexMismatchError, match="missing.*rag index --rebuild"):
        load_index(fake_index)


def test_other_format_version_is_refused_with_rebuild_hint(fake_index: Path, corpus_dir: Path) -> None:
    manifest = _manifest(fake_index)
    manifest["format_version"] = FORMAT_VERSION + 1
    (fake_index / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    for load in (read_manifest, load_index):
        with pytest.raises(IndexMismatchError) as caught:
            load(fake_index)
        assert f"format {FORMAT_VERSION + 1}" in str(caught.value)
        assert "rag index --rebuild" in str(caught.value)

    report = build_index([corpus_dir], fake_index, rebuild=True, embedder=HashEmbedder())
    assert read_manifest(fake_index).format_version == FORMAT_VERSION
    assert load_index(fake_index).size == report.chunks


def test_unreadable_manifest_is_refused_with_rebuild_hint(fake_index: Path) -> None:
    (fake_index / MANIFEST).write_text('{"format_version": 1, "generation"', encoding="utf-8")
    with pytest.raises(IndexMismatchError, match="rag index --rebuild"):
        load_index(fake_index)


def test_an_index_of_an_older_format_asks_for_an_update(fake_index: Path, corpus_dir: Path) -> None:
    (fake_index / MANIFEST).write_text(json.dumps({"format_version": 1, "generation": 4}), encoding="utf-8")
    with pytest.raises(IndexMismatchError) as caught:
        get_retriever(fake_index)
    assert str(caught.value).count("\n") == 0 and "has format 1" in str(caught.value)
    assert f"update it with `rag index --index-dir {fake_index}`" in str(caught.value)
    # Nothing readable to reuse in this manifest: the update embeds everything.
    report = build_index([corpus_dir], fake_index, embedder=HashEmbedder())
    assert report.embedded == report.chunks > 0 and read_manifest(fake_index).generation == 5


def test_each_added_article_is_a_new_segment_and_old_ones_are_kept_one_commit(
    fake_index: Path, corpus_dir: Path, write_article
) -> None:
    first = _manifest(fake_index)["segments"][0]["name"]
    for n in range(4):
        write_article(
            corpus_dir / f"extra_{n}.txt",
            f"Extra article number {n} about harbours.",
            title=f"E{n}",
            outlet="Extra News",
        )
        report = build_index([corpus_dir], fake_index, embedder=HashEmbedder())
        assert report.added == (str(corpus_dir / f"extra_{n}.txt"),)
        manifest = read_manifest(fake_index)
        names = [s["name"] for s in manifest.segments]
        assert names[0] == first and len(names) == n + 2  # the first segment is never rewritten
        assert _index_files(fake_index) == {MANIFEST, *names, *manifest.retired}
        [new] = [s for s in manifest.segments if s["name"] == names[-1]]
        [entry] = [d for d in manifest.documents.values() if d["source"] == str(corpus_dir / f"extra_{n}.txt")]
        assert new["documents"] == 1 and entry["segment"] == new["name"]
    assert read_manifest(fake_index).generation == 5


def _ids(index_dir: Path) -> dict[tuple[str, int, int], str]:
    """(source, start, end) -> chunk id, for every live chunk."""
    store = load_index(index_dir)
    return {
        (store.info(ref.doc_id).source, ref.start, ref.end): ref.chunk_id for ref in map(store.ref, store.chunk_ids())
    }


def test_chunk_ids_are_stable_across_builds_segments_and_compaction(
    fake_index: Path, corpus_dir: Path, tmp_path: Path, write_article
) -> None:
    before = _ids(fake_index)
    assert all(cid.count(":") == 1 and cid.split(":")[1].isdigit() for cid in before.values())
    write_article(corpus_dir / "extra.txt", "A new pier opened in the harbour.", title="Pier", outlet="Extra News")
    build_index([corpus_dir], fake_index, embedder=HashEmbedder())
    after_append = _ids(fake_index)
    assert {k: v for k, v in after_append.items() if k in before} == before
    compact_index(fake_index)
    assert len(read_manifest(fake_index).segments) == 1
    assert _ids(fake_index) == after_append
    # A fresh build of the same articles elsewhere gives the same ids.
    build_index([corpus_dir], tmp_path / "other", embedder=HashEmbedder())
    assert _ids(tmp_path / "other") == after_append
    passages = get_retriever(fake_index).search(QUESTION, k=3)
    assert all(p.chunk_id.startswith(p.doc_id + ":") for p in passages)


def test_a_changed_article_is_a_tombstone_and_compaction_drops_it(
    fake_index: Path, corpus_dir: Path, write_article
) -> None:
    path = corpus_dir / "000_7d35695503e2d372.txt"
    old_doc = next(i for i, d in read_manifest(fake_index).documents.items() if d["source"] == str(path))
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("\n\n", "\n\nThe okapi negotiators met again on Tuesday.\n\n", 1), encoding="utf-8")
    report = build_index([corpus_dir], fake_index, embedder=HashEmbedder())
    assert report.updated == (str(path),)
    manifest = read_manifest(fake_index)
    assert old_doc not in manifest.documents
    if len(manifest.segments) == 2:  # not merged at once by the automatic policy
        assert manifest.segments[0]["deleted"] == [old_doc]
    store = load_index(fake_index)
    assert not any(cid.startswith(old_doc) for cid in store.chunk_ids())
    hits = get_retriever(fake_index).search("okapi negotiators met again", k=10)
    assert all(p.doc_id != old_doc for p in hits)
    assert [p.source for p in hits if "okapi" in p.text] == [str(path)]
    compact_index(fake_index)
    manifest = read_manifest(fake_index)
    assert len(manifest.segments) == 1 and manifest.segments[0]["deleted"] == []
    assert manifest.segments[0]["chunks"] == load_index(fake_index).size == report.chunks
    assert not any(old_doc in line for line in (_segment(fake_index) / "chunks.jsonl").read_text("utf-8").splitlines())


def test_automatic_policy_merges_when_there_are_too_many_segments(
    fake_index: Path, corpus_dir: Path, write_article
) -> None:
    counts = []
    for n in range(MAX_SEGMENTS + 1):
        write_article(corpus_dir / f"more_{n}.txt", f"Harbour note {n}: a ferry berth.", title=f"M{n}", outlet="M")
        build_index([corpus_dir], fake_index, embedder=HashEmbedder())
        counts.append(len(read_manifest(fake_index).segments))
    # One segment per build until the next would make more than MAX_SEGMENTS: then one merged segment.
    assert counts == [*range(2, MAX_SEGMENTS + 1), 1, 2]
    store = load_index(fake_index)
    assert store.size == read_manifest(fake_index).stats["chunks"] and len(store.documents) == 5 + MAX_SEGMENTS + 1


def _store_of(tmp_path: Path, texts_by_doc: dict[str, list[str]], rng: np.random.Generator) -> NewDocuments:
    docs, chunks, lexical = [], [], []
    for doc_id, texts in texts_by_doc.items():
        text = " ".join(texts)
        docs.append(Document(doc_id, f"/src/{doc_id}.txt", text, outlet=f"Outlet {doc_id[0]}", title=doc_id))
        start = 0
        for i, t in enumerate(texts):
            chunks.append(Chunk(doc_id, i, start, start + len(t), t))
            lexical.append(t)
            start += len(t) + 1
    vectors = rng.normal(size=(len(chunks), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    spans = {d.doc_id: (0, np.zeros((0, 2), np.int64)) for d in docs}
    return NewDocuments(docs, chunks, vectors, lexical, SentenceTable(spans, np.zeros((0, 8), np.float16)))


def test_bm25_across_segments_equals_one_index_over_the_live_chunks(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    words = [
        "harbour",
        "ferry",
        "berth",
        "storm",
        "tide",
        "pier",
        "crane",
        "cargo",
        "dock",
        "sailor",
        "rope",
        "anchor",
        "gull",
    ]

    def texts(n: int) -> list[str]:
        return [" ".join(rng.choice(words, size=rng.integers(3, 12))) for _ in range(n)]

    store = SegmentStore.empty(tmp_path / "ix", "fake:8", 8)
    batches = [{f"a{i}": texts(3) for i in range(4)}, {f"b{i}": texts(2) for i in range(3)}, {"c0": texts(4)}]
    for batch in batches:
        store.apply(_store_of(tmp_path, batch, rng), (), settings={}, stats={}, hnsw_min_chunks=10**9, merge=False)
        store = load_index(tmp_path / "ix")
    store.apply(None, ["a1", "b2"], settings={}, stats={}, hnsw_min_chunks=10**9, merge=False)
    store = load_index(tmp_path / "ix")
    assert len(store.manifest.segments) == 3 and store.manifest.stats["tombstones"] == 2

    live = [(cid, store.chunk(cid).text) for cid in store.chunk_ids()]
    assert not any(cid.startswith(("a1:", "b2:")) for cid, _ in live)
    one = LexicalIndex.build([t for _, t in live])  # bm25s over the live chunks only
    for query in ("harbour ferry", "storm anchor gull", "tide tide rope", "pier"):
        terms = tokenize(query)
        expected = one.scores(terms)
        assert expected is not None
        got = store.lexical_scores(terms, [cid for cid, _ in live])
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        top = store.lexical_search(terms, 5)
        assert [s for _, s in top] == pytest.approx(sorted(expected, reverse=True)[:5], rel=1e-5)
    # Document frequencies count live chunks only (tombstoned ones here; none after compaction).
    asked = [*tokenize("harbour tide pier"), "nowhere"]
    frequencies = [sum(term in tokenize(text) for _, text in live) for term in asked]
    assert store.document_frequencies(asked).tolist() == frequencies
    # Compaction keeps the scores: term counts are merged, not recomputed.
    store.compact(hnsw_min_chunks=10**9)
    merged = load_index(tmp_path / "ix")
    assert len(merged.manifest.segments) == 1 and sorted(merged.chunk_ids()) == sorted(c for c, _ in live)
    assert merged.document_frequencies(asked).tolist() == frequencies
    terms = tokenize("harbour ferry")
    np.testing.assert_allclose(
        merged.lexical_scores(terms, [c for c, _ in live]), store.lexical_scores(terms, [c for c, _ in live]), rtol=1e-6
    )


def test_dense_search_merges_segments_honours_filters_and_tombstones(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    store = SegmentStore.empty(tmp_path / "ix", "fake:8", 8)
    added = []
    for batch in ({"x1": ["one", "two"], "y1": ["three"]}, {"x2": ["four"], "y2": ["five", "six"]}):
        new = _store_of(tmp_path, batch, rng)
        added.append(new)
        store.apply(new, (), settings={}, stats={}, hnsw_min_chunks=10**9, merge=False)
        store = load_index(tmp_path / "ix")
    vectors = np.concatenate([a.vectors for a in added])
    ids = [f"{c.doc_id}:{c.index}" for a in added for c in a.chunks]
    query = vectors[4] + 0.1 * vectors[0]
    query /= np.linalg.norm(query)
    expected = [ids[i] for i in np.argsort(-(vectors @ query))]
    assert [cid for cid, _ in store.dense_search(query, 6)] == expected
    np.testing.assert_allclose(store.vectors(expected[:2]), vectors[[ids.index(c) for c in expected[:2]]])
    only_x = store.dense_search(query, 6, Filter(outlets=frozenset({outlet_key("Outlet x")})))
    assert [cid for cid, _ in only_x] == [c for c in expected if c.startswith("x")]
    store.apply(None, ["y2"], settings={}, stats={}, hnsw_min_chunks=10**9, merge=False)
    store = load_index(tmp_path / "ix")
    assert [cid for cid, _ in store.dense_search(query, 6)] == [c for c in expected if not c.startswith("y2")]


def test_filters_by_outlet_and_by_date_prefix_and_undated_articles_as_asked(tmp_path: Path) -> None:
    dates = {"x1": "2022-06-15", "x2": "2022-06-30T23:00:00", "y1": "2022-07-01", "y2": "2021-12-31", "y3": ""}
    rng = np.random.default_rng(9)
    new = _store_of(tmp_path, {doc_id: ["quay"] for doc_id in dates}, rng)
    new = replace(new, documents=[replace(d, date=dates[d.doc_id]) for d in new.documents])
    store = SegmentStore.empty(tmp_path / "ix", "fake:8", 8)
    store.apply(new, (), settings={}, stats={}, hnsw_min_chunks=10**9, merge=False)
    store = load_index(tmp_path / "ix")
    cases = [
        (Filter(since="2022-06", until="2022-06"), {"x1", "x2", "y3"}),
        (Filter(since="2022-06", until="2022-06", undated=False), {"x1", "x2"}),
        (Filter(since="2022-06-30"), {"x2", "y1", "y3"}),
        (Filter(until="2021", undated=False), {"y2"}),
        (Filter(outlets=frozenset({outlet_key("Outlet y")}), since="2022"), {"y1", "y3"}),
        (Filter(outlets=frozenset({outlet_key("Outlet y")}), undated=False), {"y1", "y2", "y3"}),
    ]
    for where, expected in cases:
        dense = {cid.split(":")[0] for cid, _ in store.dense_search(rng.normal(size=8).astype(np.float32), 9, where)}
        lexical = {cid.split(":")[0] for cid, _ in store.lexical_search(["quay"], 9, where)}
        assert dense == lexical == expected, where


def test_build_lock_is_exclusive(index_dir: Path) -> None:
    with (
        build_lock(index_dir),
        pytest.raises(IndexBusyError, match="another build"),
        build_lock(index_dir, wait_seconds=0.2),
    ):
        pass
    with build_lock(index_dir, wait_seconds=0):  # released on exit
        pass
