"""rag/cli.py: `rag index`, `rag search`, `rag ask` through rag.cli.main, and their one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.answer import ABSTAIN_TEXT
from rag.cli import main
from rag.store import read_manifest

pytestmark = pytest.mark.usefixtures("fake_default_model")  # RAG_MODEL=hash:256: no real model here


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, *words: str) -> None:
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err + out
    for word in words:
        assert word in lines[0]


@pytest.fixture
def cli_index(capsys: pytest.CaptureFixture[str], corpus_dir: Path, index_dir: Path) -> Path:
    code, out, err = run(capsys, "index", str(corpus_dir), "--index-dir", str(index_dir), "-q")
    assert code == 0, err
    return index_dir


def test_index_reports_what_it_did(capsys: pytest.CaptureFixture[str], corpus_dir: Path, index_dir: Path) -> None:
    (corpus_dir / "empty.txt").touch()
    code, out, err = run(capsys, "index", str(corpus_dir), "--index-dir", str(index_dir), "-q")
    assert code == 0
    assert out.count("    added  ") == 5 and f"rejected  {corpus_dir / 'empty.txt'}: file is empty" in out
    assert "5 added, 0 updated, 0 removed, 0 unchanged, 0 skipped, 1 rejected" in out
    assert read_manifest(index_dir).model == "hash:256"

    # No paths: the sources the index was built from.
    code, out, err = run(capsys, "index", "--index-dir", str(index_dir), "-q", "--json")
    report = json.loads(out)
    assert code == 0 and len(report["unchanged"]) == 5 and report["embedded"] == 0
    assert report["rejected"] == [{"source": str(corpus_dir / "empty.txt"), "reason": "file is empty"}]


def test_index_uses_rag_index_dir(
    capsys: pytest.CaptureFixture[str], corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "from-env"))
    code, _, _ = run(capsys, "index", str(corpus_dir), "-q")
    assert code == 0 and (tmp_path / "from-env" / "manifest.json").exists()


def test_index_rebuild_and_model(capsys: pytest.CaptureFixture[str], cli_index: Path, corpus_dir: Path) -> None:
    code, out, _ = run(capsys, "index", str(corpus_dir), "--index-dir", str(cli_index), "--rebuild", "--json", "-q")
    report = json.loads(out)
    assert code == 0 and report["embedded"] == report["chunks"] > 0
    code, out, _ = run(capsys, "index", str(corpus_dir), "--index-dir", str(cli_index), "--model", "hash:64", "-q")
    assert code == 0 and read_manifest(cli_index).dimension == 64


def test_search_json(capsys: pytest.CaptureFixture[str], cli_index: Path) -> None:
    code, out, err = run(
        capsys, "search", "Israel ordered 40,000 tents from China", "-k", "3", "--json", "--index-dir", str(cli_index)
    )
    assert code == 0 and not err
    passages = json.loads(out)
    assert len(passages) == 3
    for p in passages:
        assert {"text", "outlet", "title", "source", "score", "start", "end", "page"} <= set(p)
        assert p["text"] in Path(p["source"]).read_text(encoding="utf-8")
    assert any("40,000 tents" in p["text"] and p["outlet"] == "JNS" for p in passages)


def test_search_outlet_filter_and_text_output(capsys: pytest.CaptureFixture[str], cli_index: Path) -> None:
    code, out, _ = run(
        capsys,
        "search",
        "Who led the US side?",
        "--outlet",
        "JNS",
        "--outlet",
        "All Israel News",
        "--index-dir",
        str(cli_index),
    )
    assert code == 0
    heads = [line for line in out.splitlines() if line[:2] in {f"{n}." for n in range(1, 10)}]
    assert heads and all(" JNS — " in h or " All Israel News — " in h for h in heads)
    assert ".txt:" in out  # where each passage is


def test_ask(capsys: pytest.CaptureFixture[str], cli_index: Path) -> None:
    code, out, err = run(capsys, "ask", "How many tents did Israel order from China?", "--index-dir", str(cli_index))
    assert code == 0 and not err
    assert "**JNS**" in out and "ordered 40,000 tents from China" in out and ABSTAIN_TEXT not in out
    code, out, _ = run(
        capsys, "ask", "How many tents did Israel order from China?", "--json", "--index-dir", str(cli_index)
    )
    answer = json.loads(out)
    assert code == 0 and {"text", "quotes", "passages", "abstained"} <= set(answer)
    assert answer["abstained"] is False and answer["quotes"]
    for quote in answer["quotes"]:
        assert quote["text"] in Path(quote["source"]).read_text(encoding="utf-8")


def test_ask_abstains_in_plain_words(capsys: pytest.CaptureFixture[str], cli_index: Path) -> None:
    question = "What is the recipe for sourdough bread with rye flour?"
    code, out, err = run(capsys, "ask", question, "--index-dir", str(cli_index))
    assert code == 0 and not err and out.strip() == ABSTAIN_TEXT
    code, out, _ = run(capsys, "ask", question, "--json", "--index-dir", str(cli_index))
    answer = json.loads(out)
    assert code == 0 and answer["abstained"] is True and answer["quotes"] == []


def test_missing_index_is_an_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for command in ("search", "ask"):
        code, out, err = run(capsys, command, "Rafah", "--index-dir", str(tmp_path / "nothing"))
        assert_one_line_error(code, out, err, "no index", "rag index")


def test_unknown_outlet_is_an_error(capsys: pytest.CaptureFixture[str], cli_index: Path) -> None:
    for command in ("search", "ask"):
        code, out, err = run(capsys, command, "Rafah", "--outlet", "The Daily Planet", "--index-dir", str(cli_index))
        assert_one_line_error(code, out, err, "The Daily Planet", "known outlets")


@pytest.mark.parametrize("question", ["", "   ", "?!"])
def test_empty_question_is_an_error(capsys: pytest.CaptureFixture[str], cli_index: Path, question: str) -> None:
    for command in ("search", "ask"):
        code, out, err = run(capsys, command, question, "--index-dir", str(cli_index))
        assert_one_line_error(code, out, err, "empty")


def test_nonexistent_path_is_an_error_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], cli_index: Path, tmp_path: Path
) -> None:
    before = read_manifest(cli_index)
    code, out, err = run(capsys, "index", str(tmp_path / "no-such-folder"), "--index-dir", str(cli_index), "-q")
    assert_one_line_error(code, out, err, "no-such-folder", "no such file or folder")
    assert read_manifest(cli_index) == before


def test_damaged_index_is_an_error_with_rebuild_hint(capsys: pytest.CaptureFixture[str], cli_index: Path) -> None:
    vectors = cli_index / read_manifest(cli_index).segments[-1]["name"] / "vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[:100])
    code, out, err = run(capsys, "search", "Rafah", "--index-dir", str(cli_index))
    assert_one_line_error(code, out, err, "rag index --rebuild")
    # Following the hint works: no paths needed, the sources come from the manifest.
    code, out, err = run(capsys, "index", "--rebuild", "--index-dir", str(cli_index), "-q")
    assert code == 0, err
    assert run(capsys, "search", "Rafah", "--index-dir", str(cli_index))[0] == 0


def test_command_line_is_quiet_on_stderr(corpus_dir: Path, index_dir: Path) -> None:
    """As a real process: `rag index -q` prints its report on stdout and nothing on stderr
    (no library debug logging), and an error is one line."""
    env = {**os.environ, "RAG_MODEL": "hash:256"}
    command = [sys.executable, "-m", "rag.cli"]
    done = subprocess.run(
        [*command, "index", str(corpus_dir), "--index-dir", str(index_dir), "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0 and done.stderr == "" and "5 added" in done.stdout
    done = subprocess.run(
        [*command, "search", "Rafah", "--outlet", "Nowhere", "--index-dir", str(index_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1


# ---------------------------------------------------------------------------------------------
# Hostile input: each bad input is one line on stderr and a non-zero exit, never a traceback.


def test_index_dir_that_is_a_file_is_an_error(
    capsys: pytest.CaptureFixture[str], corpus_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("mine", encoding="utf-8")
    code, out, err = run(capsys, "index", str(corpus_dir), "--index-dir", str(target), "-q")
    assert_one_line_error(code, out, err, str(target), "not a folder")
    assert target.read_text(encoding="utf-8") == "mine"
    for command in ("search", "ask"):
        assert_one_line_error(*run(capsys, command, "Rafah", "--index-dir", str(target)), "no index")


@pytest.mark.parametrize("question", ["\udcff tents", "tents \ud800 China"])
def test_question_that_is_not_text_is_an_error(
    capsys: pytest.CaptureFixture[str], cli_index: Path, question: str
) -> None:
    for command in ("search", "ask"):
        code, out, err = run(capsys, command, question, "--index-dir", str(cli_index))
        assert_one_line_error(code, out, err, "not UTF-8")


def test_question_of_raw_bytes_from_a_shell(cli_index: Path) -> None:
    """`rag ask $'\\xff tents'`: the bytes reach Python as a lone surrogate."""
    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "ask", b"\xff tents", "--index-dir", str(cli_index)],
        capture_output=True,
        text=True,
        env={**os.environ, "RAG_MODEL": "hash:256"},
        timeout=120,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1 and "not UTF-8" in done.stderr


@pytest.mark.parametrize(
    ("argv", "words"),
    [(("search", "Rafah", "-k", "-1"), "k must be 0 or more"), (("ask", "Rafah", "--outlet", " "), "no outlets given")],
)
def test_bad_options_are_errors(
    capsys: pytest.CaptureFixture[str], cli_index: Path, argv: tuple[str, ...], words: str
) -> None:
    assert_one_line_error(*run(capsys, *argv, "--index-dir", str(cli_index)), words)


def test_file_names_cannot_forge_lines_of_the_report(
    capsys: pytest.CaptureFixture[str], corpus_dir: Path, index_dir: Path
) -> None:
    article = next(corpus_dir.glob("000_*.txt"))
    article.rename(corpus_dir / "evil\n    added  fake.txt\x1b[2K.txt")
    with open(os.path.join(os.fsencode(corpus_dir), b"caf\xe9.txt"), "w", encoding="utf-8") as handle:
        handle.write("Outlet: Latin\n\nA file whose name is not UTF-8.\n")
    code, out, err = run(capsys, "index", str(corpus_dir), "--index-dir", str(index_dir), "-q")
    assert code == 0 and not err
    lines = out.splitlines()
    assert all(line.startswith(("    added  ", "  warning  ")) for line in lines[:-1]), out
    assert lines[-1].startswith("5 added")
    assert f"    added  {corpus_dir}/evil\\n    added  fake.txt\\x1b[2K.txt" in lines
    assert f"  warning  {corpus_dir}/caf\\xe9.txt: name is not UTF-8 text; rename it to index it" in lines
    code, out, err = run(capsys, "search", "Rafah", "--index-dir", str(index_dir), "-k", "20")
    assert code == 0 and "\x1b" not in out and "evil\\n" in out


def test_links_out_of_the_sources_are_reported_and_not_indexed(
    capsys: pytest.CaptureFixture[str], corpus_dir: Path, index_dir: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "etc" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    (corpus_dir / "passwd.txt").symlink_to(secret)
    (corpus_dir / "etc").symlink_to(secret.parent, target_is_directory=True)
    code, out, err = run(capsys, "index", str(corpus_dir), "--index-dir", str(index_dir), "-q")
    assert code == 0 and "5 added" in out
    assert f"  warning  {corpus_dir}/passwd.txt: symbolic link to {secret}, outside the files and folders" in out
    assert f"  warning  {corpus_dir}/etc: symbolic link to {secret.parent}, outside the files and folders" in out
    code, out, err = run(capsys, "ask", "Who is root?", "--outlet", "passwd", "--index-dir", str(index_dir))
    assert_one_line_error(code, out, err, "no outlet called 'passwd'")
    code, out, _ = run(capsys, "search", "root bin bash", "-k", "50", "--json", "--index-dir", str(index_dir))
    assert code == 0 and "root:x:0:0" not in out


def test_a_failing_file_system_or_a_bug_is_still_one_line(
    capsys: pytest.CaptureFixture[str], corpus_dir: Path, index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.api

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", "/srv/index/manifest.json")

    monkeypatch.setattr(rag.api, "build_index", denied)
    code, out, err = run(capsys, "index", str(corpus_dir), "--index-dir", str(index_dir), "-q")
    assert_one_line_error(code, out, err, "Permission denied: /srv/index/manifest.json")

    def bug(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(rag.api, "build_index", bug)
    code, out, err = run(capsys, "index", str(corpus_dir), "--index-dir", str(index_dir), "-q")
    assert_one_line_error(code, out, err, "unexpected RuntimeError: boom\\nsecond line", "-v")
    with pytest.raises(RuntimeError):  # -v: the traceback, for whoever debugs it
        main(["-v", "index", str(corpus_dir), "--index-dir", str(index_dir), "-q"])


def test_index_prints_each_warning_once(corpus_dir: Path, index_dir: Path) -> None:
    """As a real process: a file without an outlet and an unreadable one are each reported once (on
    stdout, in the report), not again by the log on stderr."""
    (corpus_dir / "no-outlet.txt").write_text("An article that names no outlet anywhere.\n", encoding="utf-8")
    (corpus_dir / "empty.txt").touch()
    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "index", str(corpus_dir), "--index-dir", str(index_dir), "-q"],
        capture_output=True,
        text=True,
        env={**os.environ, "RAG_MODEL": "hash:256"},
        timeout=120,
    )
    assert done.returncode == 0 and done.stderr == ""
    both = done.stdout + done.stderr
    assert both.count("no outlet declared") == 1 and both.count("file is empty") == 1


def test_dates_on_the_command_line(capsys: pytest.CaptureFixture[str], dated_index: Path) -> None:
    question = "How many aid trucks did the port of Ashdod handle?"
    code, out, _ = run(
        capsys, "search", question, "-k", "10", "--as-of", "2024-03-15", "--json", "--index-dir", str(dated_index)
    )
    assert code == 0 and {p["outlet"] for p in json.loads(out)} == {"Outlet A", "Outlet B", "Outlet D"}
    code, out, err = run(
        capsys, "ask", question, "--since", "2024-03-05", "--timeline", "--index-dir", str(dated_index)
    )
    assert code == 0 and not err and "Articles since 5 Mar 2024" in out and "Timeline" in out


def test_an_invalid_date_is_one_line_and_changes_nothing(capsys: pytest.CaptureFixture[str], dated_index: Path) -> None:
    before = (dated_index / "manifest.json").read_bytes()
    for command in ("search", "ask"):
        code, out, err = run(capsys, command, "aid trucks", "--as-of", "2024-13-45", "--index-dir", str(dated_index))
        assert_one_line_error(code, out, err, "as_of", "2024-13-45")
    assert (dated_index / "manifest.json").read_bytes() == before
