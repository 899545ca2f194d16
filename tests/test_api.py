"""rag/api.py: the public functions of API.md, with an explicit index_dir and with the defaults
($RAG_INDEX_DIR, else ./index, built from ./corpus the first time it is needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import rag
import rag.api
import rag.embed
from rag.answer import ABSTAIN_TEXT
from rag.embed import HashEmbedder
from rag.errors import IndexMissingError, QueryError
from rag.index import BuildSettings
from rag.index import build_index as index_build
from rag.retrieve import get_retriever
from rag.store import MANIFEST, read_manifest

FAKE = BuildSettings(model="hash:256")
TENTS = "How many tents did Israel order from China?"
REPO = Path(__file__).resolve().parents[1]
SEED_FILES = (Path("/work/shared/eval/seed_qa.jsonl"), REPO / "tests" / "data" / "seed_dev.jsonl")


def seed_questions() -> list[tuple[str, tuple[str, ...]]]:
    """(question, history) of every seed question there is on this machine."""
    rows = [json.loads(line) for f in SEED_FILES if f.is_file() for line in f.read_text().splitlines() if line.strip()]
    assert rows, "no seed questions found"
    return [(r["question"], tuple(r.get("history") or ())) for r in rows]


def check_positions_in_files(index_dir: Path) -> int:
    """Every passage and quote for every seed question is the file's own text at its start:end."""
    checked = 0
    files: dict[str, str] = {}
    for question, history in seed_questions():
        answer = rag.ask(question, history=history, index_dir=index_dir)
        found = [*rag.retrieve(question, k=8, history=history, index_dir=index_dir), *answer.passages, *answer.quotes]
        for item in found:
            assert Path(item.source).suffix in (".txt", ".md")
            text = files.setdefault(item.source, Path(item.source).read_text(encoding="utf-8"))
            assert text[item.start : item.end] == item.text, (question, item.source, item.start)
            assert rag.document(item.doc_id, index_dir=index_dir).text[item.start : item.end] == item.text
            checked += 1
    return checked


@pytest.fixture
def api_index(corpus_dir: Path, index_dir: Path) -> Path:
    report = rag.build_index(sources=(str(corpus_dir),), index_dir=index_dir, settings=FAKE)
    assert report.documents == 5 and report.added
    return index_dir


@dataclass
class Project:
    path: Path
    builds: list[tuple[tuple[str, ...], str]]  # (sources, index_dir) of each implicit build


@pytest.fixture
def in_project(tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch, fake_default_model: None) -> Project:
    """cwd = a folder holding corpus/ and no index yet; builds use the hash embedder; counts builds."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAG_INDEX_DIR", raising=False)
    builds: list[tuple[tuple[str, ...], str]] = []

    def counting_build(sources, index_dir, **kwargs):  # type: ignore[no-untyped-def]
        builds.append((tuple(str(s) for s in sources), str(index_dir)))
        return index_build(sources, index_dir, **kwargs)

    monkeypatch.setattr(rag.api, "_build_index", counting_build)
    return Project(tmp_path, builds)


def verbatim(index_dir: Path, doc_id: str, start: int, end: int) -> str:
    return get_retriever(index_dir).stored.documents[doc_id].text[start:end]


def test_public_names() -> None:
    for name in ("build_index", "retrieve", "ask", "document", "Passage", "Answer", "Quote", "QueryError", "RagError"):
        assert name in rag.__all__ and hasattr(rag, name)


def test_build_report(api_index: Path, corpus_dir: Path) -> None:
    report = rag.build_index(sources=(str(corpus_dir),), index_dir=api_index, settings=FAKE)
    assert len(report.unchanged) == 5 and not (report.added or report.updated or report.removed)
    assert report.chunks > 0 and report.seconds >= 0


def test_retrieve_with_index_dir(api_index: Path) -> None:
    passages = rag.retrieve("Israel ordered 40,000 tents from China", k=4, index_dir=api_index)
    assert len(passages) == 4
    for p in passages:
        assert p.text == verbatim(api_index, p.doc_id, p.start, p.end)
        assert p.outlet and p.title and Path(p.source).exists() and isinstance(p.score, float)
    assert any(p.outlet == "JNS" and "40,000 tents" in p.text for p in passages)
    only = rag.retrieve("Who led the US side?", k=3, outlets=["The Jerusalem Post"], index_dir=str(api_index))
    assert only and {p.outlet for p in only} == {"The Jerusalem Post"}
    follow_up = "And who represented the Israeli side?"
    assert rag.retrieve(follow_up, index_dir=api_index) != rag.retrieve(
        follow_up, history=["Who led the US side in the virtual meeting on Rafah?"], index_dir=api_index
    )


def test_ask_with_index_dir(api_index: Path) -> None:
    answer = rag.ask(TENTS, index_dir=api_index)
    assert isinstance(answer, rag.Answer) and answer.passages
    assert not answer.abstained and answer.quotes
    assert any("40,000 tents" in q.text and q.outlet == "JNS" for q in answer.quotes)
    for quote in answer.quotes:
        assert quote.text == verbatim(api_index, quote.doc_id, quote.start, quote.end)
        assert quote.outlet in answer.text
    answer = rag.ask(
        "And who represented the Israeli side?",
        history=("Who led the US side in the virtual meeting on Rafah?",),
        outlets=("JNS",),
        index_dir=api_index,
    )
    assert not answer.abstained and answer.quotes
    assert all(q.outlet == "JNS" for q in answer.quotes) and all(p.outlet == "JNS" for p in answer.passages)
    # Words the articles never use: the answer says so and quotes nothing.
    answer = rag.ask("What is the recipe for sourdough bread with rye flour?", index_dir=api_index)
    assert answer.abstained and not answer.quotes and answer.text == ABSTAIN_TEXT


def test_errors(api_index: Path, tmp_path: Path) -> None:
    with pytest.raises(QueryError):
        rag.retrieve("?!", index_dir=api_index)
    with pytest.raises(QueryError):
        rag.ask("   ", index_dir=api_index)
    with pytest.raises(QueryError, match="Daily Planet"):
        rag.ask(TENTS, outlets=["The Daily Planet"], index_dir=api_index)
    with pytest.raises(rag.RagError):
        rag.build_index(sources=(str(tmp_path / "nope"),), index_dir=api_index, settings=FAKE)


def test_explicit_index_dir_is_never_built_implicitly(in_project: Project) -> None:
    with pytest.raises(IndexMissingError, match="rag index"):
        rag.retrieve(TENTS, index_dir=in_project.path / "elsewhere")
    assert in_project.builds == [] and not (in_project.path / "elsewhere" / MANIFEST).exists()


def test_default_index_is_built_from_corpus_on_first_use(in_project: Project) -> None:
    passages = rag.retrieve("Israel ordered 40,000 tents from China")
    assert passages and (in_project.path / "index" / MANIFEST).exists()
    assert in_project.builds == [(("corpus",), "index")]
    assert {p.source for p in passages} <= {f"corpus/{p.name}" for p in (in_project.path / "corpus").iterdir()}
    assert rag.ask(TENTS).passages
    assert len(in_project.builds) == 1  # built once


def test_rag_index_dir(in_project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_INDEX_DIR", str(in_project.path / "env-index"))
    assert rag.default_index_dir() == in_project.path / "env-index"
    answer = rag.ask(TENTS)
    assert answer.passages and (in_project.path / "env-index" / MANIFEST).exists()
    assert not (in_project.path / "index").exists()
    assert in_project.builds == [(("corpus",), str(in_project.path / "env-index"))]

    # build_index with no index_dir writes there too.
    (in_project.path / "corpus" / "000_7d35695503e2d372.txt").unlink()
    report = rag.build_index()
    assert report.removed == ("corpus/000_7d35695503e2d372.txt",)
    assert read_manifest(in_project.path / "env-index").generation == 2
    assert "JNS" not in {p.outlet for p in rag.retrieve("tents", k=10)}


def test_no_index_and_no_corpus(in_project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    with pytest.raises(IndexMissingError, match="rag index"):
        rag.retrieve(TENTS)
    assert in_project.builds == []


def test_first_use_from_many_threads_builds_once(in_project: Project) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            results.append(len(rag.retrieve("Israel ordered 40,000 tents from China", k=3)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [3, 3, 3, 3]
    assert len(in_project.builds) == 1


ROLLED = "test-rolled:256"


class RolledHashEmbedder(HashEmbedder):
    """Another model with the dimension of hash:256: its vectors turned by one coordinate. Within
    either model the similarities are the same; one model's question against the other's vectors is noise."""

    @property
    def name(self) -> str:
        return ROLLED

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        return np.roll(super().encode(texts, batch_size, progress), 1, axis=1)


def test_two_models_of_one_dimension_keep_their_own_vectors(
    corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Vectors are never handed from one model to another, however alike the models: not between two
    indexes answered in one process, not when an index is built again with another model. (Sentence
    vectors are stored with each index; there is no process-wide cache of them to reset.)"""
    rolled = RolledHashEmbedder()
    monkeypatch.setitem(rag.embed._CACHE, ROLLED, rolled)  # where load_embedder finds it, for builds and questions
    sources = (str(corpus_dir),)
    plain, other, switched = tmp_path / "plain", tmp_path / "rolled", tmp_path / "switched"
    rag.build_index(sources=sources, index_dir=plain, settings=FAKE)
    first = rag.ask(TENTS, index_dir=plain)  # answered before the other model's index exists
    rag.build_index(sources=sources, index_dir=other, settings=BuildSettings(model=ROLLED))
    rag.build_index(sources=sources, index_dir=switched, settings=FAKE)
    # The same texts in the same folder, another model, no --rebuild: everything is embedded again.
    report = rag.build_index(sources=sources, index_dir=switched, settings=BuildSettings(model=ROLLED))
    assert report.embedded == report.chunks > 0 and report.sentences_embedded > 0
    for index_dir, model in ((plain, HashEmbedder()), (other, rolled), (switched, rolled)):
        stored = get_retriever(index_dir).stored
        assert stored.manifest.model == model.name and stored.manifest.dimension == 256
        for doc_id, doc in stored.documents.items():
            offsets, vectors = stored.sentences.of(doc_id, 0, len(doc.text) + 1)
            assert len(offsets) > 0
            expected = model.encode([doc.text[start:end] for start, end in offsets.tolist()])
            # Stored at half precision: equal to a few 1e-4; the other model's vectors differ by up to 1.
            np.testing.assert_allclose(vectors, expected, atol=1e-3, err_msg=f"{index_dir.name}: {doc_id}")
    # Each index answers with its own model as the hash model's index does, to the sentence's probability.
    assert not first.abstained and first.quotes
    for index_dir in (plain, other, switched):
        answer = rag.ask(TENTS, index_dir=index_dir)
        assert answer.text == first.text, index_dir.name
        assert [(q.doc_id, q.start, q.end) for q in answer.quotes] == [(q.doc_id, q.start, q.end) for q in first.quotes]
        assert [q.score for q in answer.quotes] == pytest.approx([q.score for q in first.quotes], abs=1e-3)


def test_positions_of_passages_and_quotes_index_the_file(api_index: Path) -> None:
    # The seed files open with a Title/Outlet header block: offsets count it, as the file does.
    assert check_positions_in_files(api_index) > 100


@pytest.mark.slow
def test_positions_index_the_file_with_the_real_model(real_index: Path) -> None:
    assert check_positions_in_files(real_index) > 100


def test_document_is_the_text_offsets_index(api_index: Path, corpus_dir: Path) -> None:
    passage = rag.retrieve(TENTS, k=1, index_dir=api_index)[0]
    doc = rag.document(passage.doc_id, index_dir=api_index)
    assert isinstance(doc, rag.Document) and doc.source == passage.source and doc.outlet == passage.outlet
    assert doc.text == Path(doc.source).read_text(encoding="utf-8")
    assert doc.text.startswith("Title: ") and doc.text[doc.body_start - 2 : doc.body_start] == "\n\n"
    assert doc.body_start <= passage.start
    with pytest.raises(QueryError, match="no document"):
        rag.document("no-such-id", index_dir=api_index)


# --- a question from the shell: nothing heavy imported ------------------------------------------------------------

HEAVY = ("torch", "sentence_transformers", "transformers", "gradio")
_ASK_AND_LIST_MODULES = """
import json, sys
from rag.cli import main
code = main(["ask", sys.argv[1], "--index-dir", sys.argv[2]])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def ask_in_a_fresh_process(index_dir: Path, env: dict[str, str] | None = None) -> tuple[dict[str, object], str]:
    done = subprocess.run(
        [sys.executable, "-c", _ASK_AND_LIST_MODULES, TENTS, str(index_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        timeout=300,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, done.stderr
    return report, done.stdout + done.stderr


def test_importing_the_package_imports_nothing_heavy() -> None:
    code = "import json, sys, rag, rag.cli, rag.api, rag.retrieve, rag.answer; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    modules = set(json.loads(done.stdout))
    assert not modules & {*HEAVY, "onnxruntime", "faiss", "bm25s", "scipy", "trafilatura", "pypdf", "tqdm"}


def test_a_question_does_not_import_torch(api_index: Path) -> None:
    report, _ = ask_in_a_fresh_process(api_index)
    assert not set(HEAVY) & set(report["modules"])  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_question_on_a_real_index_runs_its_onnx_copy_without_torch(real_index: Path) -> None:
    report, output = ask_in_a_fresh_process(real_index)
    modules = set(report["modules"])  # type: ignore[arg-type]
    assert "onnxruntime" in modules and not set(HEAVY) & modules
    assert "40,000" in output and "Loading" not in output and "%|" not in output  # no progress bar
    # The comparison the benchmark makes: the same question through sentence-transformers, still no bar.
    report, output = ask_in_a_fresh_process(real_index, {"RAG_QUERY_EMBEDDER": "torch"})
    assert "sentence_transformers" in report["modules"]  # type: ignore[operator]
    assert "40,000" in output and "Loading" not in output and "%|" not in output


def test_dates_on_retrieve_and_ask(dated_index: Path) -> None:
    question = "How many aid trucks did the port of Ashdod handle?"
    passages = rag.retrieve(question, k=10, index_dir=dated_index, as_of="2024-03-15")
    assert {p.outlet for p in passages} == {"Outlet A", "Outlet B", "Outlet D"}
    assert {p.date for p in passages} == {"2024-03-01", "2024-03-10", None}
    answer = rag.ask(question, index_dir=dated_index, since="2024-03-05", until="2024-03-25")
    assert answer.quotes and {q.outlet for q in answer.quotes} <= {"Outlet B", "Outlet C", "Outlet D"}
    assert answer.window == "Articles from 5 Mar to 25 Mar 2024" and answer.window in answer.text
    for quote in answer.quotes:
        assert quote.date == {"Outlet B": "2024-03-10", "Outlet C": "2024-03-20", "Outlet D": None}[quote.outlet]
    dated = [q for q in answer.quotes if q.date]
    assert any(f"{q.outlet}, {int(q.date[8:])} Mar 2024" in answer.text for q in dated)  # type: ignore[index]
    lines = rag.api.timeline(answer).splitlines()
    days = [line for line in lines if line.startswith("**")]
    assert days == sorted(days, key=lambda d: (d == "**Undated**", d)) and days


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"as_of": "2024-13-45"}, ("as_of", "month must be in 1..12")),
        ({"since": "yesterday"}, ("since", "YYYY-MM-DD")),
        ({"until": 20240301}, ("until", "ISO date")),
        ({"since": "2024-03-20", "until": "2024-03-01"}, ("after",)),
    ],
)
def test_invalid_dates_are_one_line_errors(
    dated_index: Path, kwargs: dict[str, object], words: tuple[str, ...]
) -> None:
    for call in (rag.retrieve, rag.ask):
        with pytest.raises(QueryError) as error:
            call("How many aid trucks?", index_dir=dated_index, **kwargs)  # type: ignore[operator]
        message = str(error.value)
        assert "\n" not in message and all(w in message for w in words), message
