"""rag/store.py: the on-disk format, the manifest as the commit point, checksums, cleanup, the lock."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import faiss
import numpy as np
import pytest

from rag.embed import HashEmbedder
from rag.errors import IndexBusyError, IndexMismatchError, IndexMissingError
from rag.index import build_index
from rag.retrieve import Retriever, get_retriever
from rag.store import FORMAT_VERSION, MANIFEST, build_lock, generation_names, load_index, read_manifest

QUESTION = "How many tents did Israel order from China?"


def _manifest(index_dir: Path) -> dict:
    return json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))


def _index_files(index_dir: Path) -> set[str]:
    return {p.name for p in index_dir.iterdir() if p.name != ".lock"}


def _results(index_dir: Path) -> list[tuple[str, int, int]]:
    retriever = Retriever(load_index(index_dir), HashEmbedder())
    return [(p.source, p.start, p.end) for p in retriever.search(QUESTION, k=5)]


def test_layout_is_json_lines_npy_faiss_and_bm25_dir(fake_index: Path) -> None:
    manifest = _manifest(fake_index)
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["model"] == "hash:256" and manifest["dimension"] == 256
    names = generation_names(manifest["generation"])
    assert _index_files(fake_index) == {MANIFEST, *names.values()}
    assert (fake_index / names["bm25"]).is_dir()

    documents = [json.loads(line) for line in (fake_index / names["documents"]).read_text("utf-8").splitlines()]
    chunks = [json.loads(line) for line in (fake_index / names["chunks"]).read_text("utf-8").splitlines()]
    assert {d["doc_id"] for d in documents} == set(manifest["documents"])
    texts = {d["doc_id"]: d["text"] for d in documents}
    for chunk in chunks:
        assert texts[chunk["doc_id"]][chunk["start"] : chunk["end"]] == chunk["text"]

    vectors = np.load(fake_index / names["vectors"], allow_pickle=False)
    assert vectors.dtype == np.float32 and vectors.shape == (len(chunks), 256)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert faiss.read_index(str(fake_index / names["dense"])).ntotal == len(chunks)

    bm25_files = list((fake_index / names["bm25"]).iterdir())
    assert bm25_files and {p.suffix for p in bm25_files} <= {".npy", ".json"}
    for path in bm25_files:
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)
        else:
            json.loads(path.read_text(encoding="utf-8"))


def test_nothing_is_pickled(fake_index: Path) -> None:
    for path in fake_index.rglob("*"):
        if path.is_file() and path.name != ".lock":
            head = path.read_bytes()[:2]
            assert not (head[:1] == b"\x80" and head[1:2] in b"\x02\x03\x04\x05"), f"{path} looks like a pickle"


def test_manifest_checksums_cover_every_generation_file(fake_index: Path) -> None:
    manifest = _manifest(fake_index)
    on_disk = {
        str(p.relative_to(fake_index))
        for p in fake_index.rglob("*")
        if p.is_file() and p.name not in (MANIFEST, ".lock")
    }
    assert set(manifest["files"]) == on_disk
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((fake_index / name).read_bytes()).hexdigest() == digest


def test_missing_index_says_how_to_build(index_dir: Path) -> None:
    with pytest.raises(IndexMissingError, match="rag index"):
        load_index(index_dir)


def test_uncommitted_generation_is_invisible(fake_index: Path, corpus_dir: Path) -> None:
    """Files of a generation the manifest does not name (a killed build) change nothing."""
    before = _results(fake_index)
    generation = _manifest(fake_index)["generation"]
    for name in generation_names(generation + 1).values():
        (fake_index / name).write_bytes(b"half-written junk")
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


@pytest.mark.parametrize("part", ["documents", "chunks", "vectors", "dense", "bm25"])
def test_truncated_file_is_detected_with_rebuild_hint(fake_index: Path, corpus_dir: Path, part: str) -> None:
    names = generation_names(_manifest(fake_index)["generation"])
    path = fake_index / names[part]
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
    assert load_index(fake_index).chunks


def test_edited_file_is_detected(fake_index: Path) -> None:
    """An edit that keeps the file well-formed is still caught by its checksum."""
    path = fake_index / generation_names(_manifest(fake_index)["generation"])["chunks"]
    text = path.read_text(encoding="utf-8")
    assert "Rafah" in text
    path.write_text(text.replace("Rafah", "Rafax", 1), encoding="utf-8")
    with pytest.raises(IndexMismatchError, match="checksum.*rag index --rebuild"):
        load_index(fake_index)


def test_deleted_file_is_detected(fake_index: Path) -> None:
    (fake_index / generation_names(_manifest(fake_index)["generation"])["vectors"]).unlink()
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
    assert len(load_index(fake_index).chunks) == report.chunks


def test_unreadable_manifest_is_refused_with_rebuild_hint(fake_index: Path) -> None:
    (fake_index / MANIFEST).write_text('{"format_version": 1, "generation"', encoding="utf-8")
    with pytest.raises(IndexMismatchError, match="rag index --rebuild"):
        load_index(fake_index)


def test_old_generations_are_removed_keeping_current_and_previous(
    fake_index: Path, corpus_dir: Path, write_article
) -> None:
    for n in range(4):
        write_article(
            corpus_dir / f"extra_{n}.txt",
            f"Extra article number {n} about harbours.",
            title=f"E{n}",
            outlet="Extra News",
        )
        build_index([corpus_dir], fake_index, embedder=HashEmbedder())
        generation = read_manifest(fake_index).generation
        expected = {MANIFEST, *generation_names(generation).values()}
        if generation > 1:
            expected |= set(generation_names(generation - 1).values())
        assert _index_files(fake_index) == expected
    assert read_manifest(fake_index).generation == 5


def test_build_lock_is_exclusive(index_dir: Path) -> None:
    with (
        build_lock(index_dir),
        pytest.raises(IndexBusyError, match="another build"),
        build_lock(index_dir, wait_seconds=0.2),
    ):
        pass
    with build_lock(index_dir, wait_seconds=0):  # released on exit
        pass
