"""rag/ray_build.py: `rag index --engine ray` makes the index the in-process build makes.

The smoke test runs on the hash embedder (rag.embed.HashEmbedder, "hash:256"), which the Ray
actors load by name like any model; it is skipped when the `scale` extra is not installed.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.cli import main
from rag.index import BuildReport, BuildSettings, build_index
from rag.store import load_index

SETTINGS = BuildSettings(model="hash:256")


def _comparable(report: BuildReport) -> dict[str, Any]:
    return {k: v for k, v in report.as_dict().items() if k not in ("seconds", "index_dir")}


def _assert_same_index(local_dir: Path, ray_dir: Path) -> None:
    local, remote = load_index(local_dir), load_index(ray_dir)
    ids = list(local.chunk_ids())
    assert list(remote.chunk_ids()) == ids
    cosines = np.sum(local.vectors(ids) * remote.vectors(ids), axis=1)
    assert cosines.min() >= 0.9999
    for doc_id, doc in local.documents.items():
        offsets, vectors = local.sentences.of(doc_id, 0, len(doc.text) + 1)
        remote_offsets, remote_vectors = remote.sentences.of(doc_id, 0, len(doc.text) + 1)
        assert np.array_equal(offsets, remote_offsets)
        assert np.sum(vectors * remote_vectors, axis=1).min() >= 0.999  # float16 as stored


def test_ray_build_makes_the_same_index_and_report(
    corpus_dir: Path, tmp_path: Path, write_article: Callable[..., Path]
) -> None:
    ray = pytest.importorskip("ray", reason="the Ray engine is the scale extra: pip install -e '.[scale]'")
    from rag.ray_build import build_index_ray

    local_dir, ray_dir = tmp_path / "local", tmp_path / "ray"
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    try:
        local = build_index([corpus_dir], local_dir, settings=SETTINGS)
        # One article per actor call and two per commit: five articles make three commits.
        remote = build_index_ray(
            [corpus_dir], ray_dir, settings=SETTINGS, workers=2, commit_articles=2, batch_articles=1
        )
        assert _comparable(remote) == _comparable(local) and remote.embedded == remote.chunks > 0
        assert len(load_index(ray_dir).manifest.segments) == 3
        _assert_same_index(local_dir, ray_dir)

        # An update: one article changed, one gone, one new, a copy, an empty file.
        first, second, *_ = sorted(corpus_dir.glob("*.txt"))
        first.write_text(first.read_text(encoding="utf-8") + "\nA late paragraph was added.\n", encoding="utf-8")
        second.unlink()
        write_article(corpus_dir / "new.txt", "The harbour reopened on Monday.", title="Harbour", outlet="Gazette")
        (corpus_dir / "copy.txt").write_text((corpus_dir / "new.txt").read_text(encoding="utf-8"), encoding="utf-8")
        (corpus_dir / "empty.txt").write_text("", encoding="utf-8")
        local = build_index([corpus_dir], local_dir, settings=SETTINGS)
        remote = build_index_ray(
            [corpus_dir], ray_dir, settings=SETTINGS, workers=2, commit_articles=1, batch_articles=1
        )
        assert _comparable(remote) == _comparable(local)
        assert len(remote.updated) == len(remote.removed) == len(remote.skipped) == len(remote.rejected) == 1
        assert 0 < remote.embedded < remote.chunks  # the unchanged articles kept their vectors
        _assert_same_index(local_dir, ray_dir)
    finally:
        ray.shutdown()


def test_engine_ray_without_the_extra_is_one_line(
    corpus_dir: Path, index_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, as without the scale extra
    code = main(["index", str(corpus_dir), "--index-dir", str(index_dir), "--engine", "ray", "-q"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err == "error: the Ray engine needs the scale extra: pip install -e '.[scale]'\n"
    assert not index_dir.exists()


def test_workers_without_engine_ray_is_refused(
    corpus_dir: Path, index_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["index", str(corpus_dir), "--index-dir", str(index_dir), "--workers", "2", "-q"])
    assert code == 1 and capsys.readouterr().err == "error: --workers is for --engine ray\n"
    assert not index_dir.exists()
