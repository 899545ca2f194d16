"""Builds that die, builds that race, and questions asked while a build runs.

Builds run in subprocesses (tests/test_faults.py writes the script) with a hash embedder that can
hold still inside encode: the parent waits for a marker line on the child's stdout, then acts.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.embed import HashEmbedder
from rag.errors import IndexBusyError
from rag.index import build_index, compact_index
from rag.retrieve import Retriever, get_retriever
from rag.store import MANIFEST, build_lock, load_index, read_manifest

QUESTION = "How many tents did Israel order from China?"
TIMEOUT = 120.0  # seconds; generous for two shared cores, never reached when things work

BUILDER = r'''
import json, os, signal, sys, time
from pathlib import Path

import faiss
import numpy as np

import rag.segments as segments
from rag.bm25 import TermCounts
from rag.embed import HashEmbedder
from rag.index import build_index, compact_index

index_dir, sources, mode, release = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
compact = mode.startswith("compact-")  # rag index --compact instead of a build
mode = mode.removeprefix("compact-")


def say(*parts):
    print(*parts, flush=True)


def die():
    os.kill(os.getpid(), signal.SIGKILL)


class SlowEmbedder(HashEmbedder):
    """The hash embedder ("hash:256"), but it can hang inside encode."""

    def encode(self, texts, batch_size=64, progress=False):
        say("ENCODING", os.getpid())
        if mode == "hang":  # until the parent kills us
            while True:
                time.sleep(0.05)
        if mode == "wait":  # until the parent creates the release file
            deadline = time.monotonic() + 120
            while not release.exists():
                if time.monotonic() > deadline:
                    sys.exit("never released")
                time.sleep(0.02)
        return super().encode(texts, batch_size=batch_size, progress=progress)


def after(owner, name):
    """Die right after owner.name has run."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        die()
        return result

    setattr(owner, name, wrapper)


if mode == "kill-after-vectors":
    after(np, "save")
elif mode == "kill-after-dense":
    after(faiss, "write_index")
elif mode == "kill-after-bm25":
    after(TermCounts, "save")
elif mode == "kill-after-segment":  # the segment is complete with its listing of articles, not yet committed
    after(segments, "write_segment")
elif mode == "kill-before-commit":  # the new manifest is written and fsynced, not yet renamed
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith("manifest.json"):
            die()
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace
elif mode == "kill-after-commit":  # renamed, old segments not yet cleaned up
    segments.remove_unused = lambda *args, **kwargs: die()

say("READY", os.getpid())
if compact:
    manifest = compact_index(index_dir)
    say("DONE", json.dumps({"segments": len(manifest.segments)}))
else:
    report = build_index(sources, index_dir, embedder=SlowEmbedder())
    say("DONE", json.dumps(report.as_dict()))
'''


class Builder:
    """A build in a subprocess; its stdout lines are collected as they come."""

    def __init__(self, workdir: Path, index_dir: Path, sources: list[Path], mode: str) -> None:
        script = workdir / "builder.py"
        if not script.exists():
            script.write_text(BUILDER, encoding="utf-8")
        self.release = workdir / "release"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(index_dir),
                json.dumps([str(s) for s in sources]),
                mode,
                str(self.release),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.closed = False
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _pump(self, timeout: float) -> None:
        """Move the lines printed so far into self.lines, waiting up to `timeout` for the first."""
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            if line is None:
                self.closed = True
            else:
                self.lines.append(line)
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return

    def saw(self, marker: str) -> bool:
        self._pump(0)
        return any(line.startswith(marker) for line in self.lines)

    def wait_for(self, marker: str, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.saw(marker):
            if self.closed or time.monotonic() > deadline:
                self.fail(f"no {marker!r} line")
            self._pump(0.2)

    def finish(self, timeout: float = TIMEOUT) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.fail("did not finish")
        self._reader.join(timeout=10)
        self._pump(0)
        return code

    def report(self) -> dict:
        done = [line for line in self.lines if line.startswith("DONE ")]
        if not done:
            self.fail("no report")
        return json.loads(done[-1][5:])

    def fail(self, why: str) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        stderr = self.proc.stderr.read() if self.proc.stderr else ""
        pytest.fail(f"builder {self.proc.pid}: {why}; stdout={self.lines!r}\nstderr={stderr[-3000:]}")


def wait_until(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def answer(index_dir: Path, question: str = QUESTION) -> list[tuple[str, int, int, str]]:
    """The passages for a question, from a fresh load of the committed index (no cache)."""
    retriever = Retriever(load_index(index_dir), HashEmbedder())
    return [(p.source, p.start, p.end, p.text) for p in retriever.search(question, k=5)]


def committed_files(index_dir: Path) -> set[str]:
    """The manifest, the lock, the committed segments and those the previous manifest used."""
    manifest = read_manifest(index_dir)
    return {MANIFEST, ".lock", *(s["name"] for s in manifest.segments), *manifest.retired}


@pytest.fixture
def pending_change(fake_index: Path, corpus_dir: Path, write_article: Callable[..., Path]) -> Path:
    """A new article about tents (it changes the answer), so that the next build embeds and writes."""
    return write_article(
        corpus_dir / "tents.txt",
        "Israel ordered another 40,000 tents from China for the evacuation of Rafah, officials said. "
        "The okapi-grey tents will be set up in humanitarian islands in central Gaza.",
        title="Israel orders more tents",
        outlet="Tent Weekly",
    )


def assert_locked(index_dir: Path) -> None:
    with pytest.raises(IndexBusyError), build_lock(index_dir, wait_seconds=0):
        pass


def assert_old_index_intact(index_dir: Path, before: list[tuple[str, int, int, str]]) -> None:
    assert read_manifest(index_dir).generation == 1
    assert answer(index_dir) == before
    retriever = get_retriever(index_dir)
    assert retriever.generation == 1 and "Tent Weekly" not in retriever.outlets
    assert [(p.source, p.start, p.end, p.text) for p in retriever.search(QUESTION, k=5)] == before
    with build_lock(index_dir, wait_seconds=0):  # a dead build holds no lock
        pass


def assert_next_build_completes(index_dir: Path, corpus_dir: Path, new_article: Path) -> None:
    report = build_index([corpus_dir], index_dir, embedder=HashEmbedder())
    assert report.added == (str(new_article),) and report.embedded > 0
    assert read_manifest(index_dir).generation == 2
    assert any(p.outlet == "Tent Weekly" for p in get_retriever(index_dir).search("okapi-grey tents", k=3))
    assert {p.name for p in index_dir.iterdir()} == committed_files(index_dir)  # leftovers cleaned up


@pytest.mark.parametrize(
    ("mode", "written"),
    [
        ("kill-after-vectors", "seg-2/chunk-table.npy"),
        ("kill-after-dense", "seg-2/dense.faiss"),
        ("kill-after-bm25", "seg-2/terms"),
        ("kill-after-segment", "seg-2/meta.json"),
        ("kill-before-commit", f"{MANIFEST}.tmp-"),
    ],
)
def test_build_killed_while_writing_leaves_the_old_index(
    fake_index: Path, corpus_dir: Path, pending_change: Path, tmp_path: Path, mode: str, written: str
) -> None:
    before = answer(fake_index)
    builder = Builder(tmp_path, fake_index, [corpus_dir], mode)
    assert builder.finish() == -signal.SIGKILL, builder.lines
    assert builder.saw("ENCODING") and not builder.saw("DONE")
    # It got that far: the new segment (or the new manifest) was being written beside the committed index.
    assert any(str(p.relative_to(fake_index)).startswith(written) for p in fake_index.rglob("*"))
    assert_old_index_intact(fake_index, before)
    assert_next_build_completes(fake_index, corpus_dir, pending_change)


def test_build_killed_while_embedding_leaves_the_old_index(
    fake_index: Path, corpus_dir: Path, pending_change: Path, tmp_path: Path
) -> None:
    before = answer(fake_index)
    builder = Builder(tmp_path, fake_index, [corpus_dir], "hang")
    builder.wait_for("ENCODING")
    assert_locked(fake_index)  # it holds the lock while it embeds
    os.kill(builder.proc.pid, signal.SIGKILL)
    assert builder.finish() == -signal.SIGKILL
    assert_old_index_intact(fake_index, before)
    assert_next_build_completes(fake_index, corpus_dir, pending_change)


def test_build_killed_after_the_commit_leaves_the_new_index(
    fake_index: Path, corpus_dir: Path, pending_change: Path, tmp_path: Path
) -> None:
    before = answer(fake_index)
    builder = Builder(tmp_path, fake_index, [corpus_dir], "kill-after-commit")
    assert builder.finish() == -signal.SIGKILL
    assert read_manifest(fake_index).generation == 2
    after = answer(fake_index)
    assert after != before and any(source == str(pending_change) for source, *_ in after)
    report = build_index([corpus_dir], fake_index, embedder=HashEmbedder())
    assert report.embedded == 0 and str(pending_change) in report.unchanged


def test_two_builds_at_once_are_serialised(
    fake_index: Path, corpus_dir: Path, tmp_path: Path, write_article: Callable[..., Path]
) -> None:
    extra = {
        name: write_article(
            tmp_path / f"extra_{name}" / f"{name}.txt",
            f"The {name} marmot colony grew to {len(name) * 100} animals this year.",
            title=f"{name.title()} marmots",
            outlet=f"{name.title()} Gazette",
        )
        for name in ("alpine", "tundra")
    }
    builders = {name: Builder(tmp_path, fake_index, [corpus_dir, path.parent], "wait") for name, path in extra.items()}
    for builder in builders.values():
        builder.wait_for("READY")
    wait_until(lambda: any(b.saw("ENCODING") for b in builders.values()), "a build to start embedding")
    first = next(name for name, b in builders.items() if b.saw("ENCODING"))
    second = next(name for name in builders if name != first)
    # The first holds the lock while it embeds; the second cannot be embedding too.
    assert_locked(fake_index)
    assert not builders[second].saw("ENCODING")
    builders[first].release.touch()
    for builder in builders.values():
        assert builder.finish() == 0, builder.lines

    first_report, second_report = builders[first].report(), builders[second].report()
    assert first_report["added"] == [str(extra[first])] and not first_report["removed"]
    # The second build started from the first one's committed index: it was serialised behind it.
    assert second_report["added"] == [str(extra[second])]
    assert second_report["removed"] == [str(extra[first])]
    assert second_report["embedded"] > 0

    stored = load_index(fake_index)  # checksums verified
    assert stored.manifest.generation == 3
    assert {d.source for d in stored.documents.values()} == {
        *(str(p) for p in corpus_dir.glob("*.txt")),
        str(extra[second]),
    }
    assert stored.size == stored.manifest.stats["chunks"] == sum(d.chunks for d in map(stored.info, stored.documents))
    for chunk in map(stored.chunk, stored.chunk_ids()):
        assert stored.documents[chunk.doc_id].text[chunk.start : chunk.end] == chunk.text
    top = get_retriever(fake_index).search(f"{second} marmot colony", k=1)[0]
    assert top.source == str(extra[second])


def test_questions_during_a_rebuild_are_answered_from_the_old_index_until_the_swap(
    fake_index: Path, corpus_dir: Path, pending_change: Path, tmp_path: Path
) -> None:
    old_generation = read_manifest(fake_index).generation
    old_answer = answer(fake_index)
    observed: list[tuple[int, list[tuple[str, int, int, str]]]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                retriever = get_retriever(fake_index)
                passages = retriever.search(QUESTION, k=5)
                observed.append((retriever.generation, [(p.source, p.start, p.end, p.text) for p in passages]))
            except BaseException as exc:  # reported below
                errors.append(exc)
            stop.wait(0.002)  # pacing only: leave the CPU to the build

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        builder = Builder(tmp_path, fake_index, [corpus_dir], "wait")
        builder.wait_for("ENCODING")
        during = len(observed)
        wait_until(lambda: len(observed) >= during + 10, "questions answered during the build")
        builder.release.touch()
        assert builder.finish() == 0, builder.lines
        wait_until(lambda: bool(observed) and observed[-1][0] == old_generation + 1, "the reader to see the swap")
    finally:
        stop.set()
        thread.join(timeout=30)

    assert not errors, errors[:3]
    generations = [g for g, _ in observed]
    assert set(generations) == {old_generation, old_generation + 1}
    assert generations == sorted(generations)  # never back to the old index after the swap
    new_answer = answer(fake_index)
    assert new_answer != old_answer
    for generation, passages in observed:
        assert passages == (old_answer if generation == old_generation else new_answer)


@pytest.mark.parametrize(
    "mode",
    [
        "kill-after-vectors",
        "kill-after-dense",
        "kill-after-bm25",
        "kill-after-segment",
        "kill-before-commit",
        "kill-after-commit",
    ],
)
def test_compaction_killed_leaves_an_index_that_answers_the_same(
    fake_index: Path, corpus_dir: Path, pending_change: Path, tmp_path: Path, mode: str
) -> None:
    """`rag index --compact` killed at any point: the index answers the same question with the
    same passages, from the segments (before the commit) or from the merged one (after)."""
    build_index([corpus_dir], fake_index, embedder=HashEmbedder())  # the new article: a second segment
    manifest = read_manifest(fake_index)
    assert len(manifest.segments) == 2
    before = answer(fake_index)
    builder = Builder(tmp_path, fake_index, [corpus_dir], f"compact-{mode}")
    assert builder.finish() == -signal.SIGKILL, builder.lines
    assert not builder.saw("DONE")
    after = read_manifest(fake_index)
    if mode == "kill-after-commit":
        assert len(after.segments) == 1 and after.generation == manifest.generation + 1
    else:
        assert after == manifest  # the commit never happened
    assert answer(fake_index) == before
    assert [(p.source, p.start, p.end, p.text) for p in get_retriever(fake_index).search(QUESTION, k=5)] == before
    with build_lock(fake_index, wait_seconds=0):  # a dead compaction holds no lock
        pass
    # The next compaction (or none needed) completes and still answers the same.
    compact_index(fake_index)
    assert len(read_manifest(fake_index).segments) == 1 and answer(fake_index) == before
    assert {p.name for p in fake_index.iterdir()} == committed_files(fake_index)
