"""The web chat under load: 20 concurrent clients, each with its own session, and an upload mid-way.

The app runs in this process on a free loopback port over an index built with the fast
HashEmbedder; the load driver is bench/load.py's (the benchmark runs the same load against the
real model). Every answer must be the one rag.api.ask gives for that client's own question,
conversation and outlets (no cross-talk between sessions), and the index swap an upload makes
must not fail or mix up any question asked while it happens.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import sys
from pathlib import Path

import pytest

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

from rag.api import ask, retriever_for  # noqa: E402
from rag.chat import add_files, build_app, launch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 20
SECONDS = 12.0


def _load_driver():  # bench/ is not a package
    spec = importlib.util.spec_from_file_location("bench_load", ROOT / "bench" / "load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


load = _load_driver()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_concurrent_clients_and_an_upload(fake_index: Path, corpus_dir: Path, tmp_path: Path) -> None:
    before = tmp_path / "index-before"
    shutil.copytree(fake_index, before)  # the index as it was, to check answers given before the swap
    upload_file = tmp_path / "upload" / "solar plant.txt"
    upload_file.parent.mkdir()
    upload_file.write_text(load.UPLOAD_ARTICLE, encoding="utf-8")
    outlets = list(retriever_for(fake_index).outlets)
    assert load.UPLOAD_OUTLET not in outlets

    uploads = tmp_path / "uploads"
    app = build_app(fake_index, uploads_dir=uploads)
    port = _free_port()
    launch(app, "127.0.0.1", port, block=False, quiet=True)
    try:
        run = load.run_load(
            f"http://127.0.0.1:{port}/",
            outlets,
            clients=CLIENTS,
            seconds=SECONDS,
            upload_file=upload_file,
            upload_after=3 * CLIENTS,
            connect_timeout=60,
        )
    finally:
        app.close(verbose=False)

    problems = load.verify(run, before, fake_index)
    numbers = load.summary(run, problems)
    print(f"\nload: {numbers}")  # timings are printed, not asserted

    assert not run.other_errors, run.other_errors
    errors = [f"client {t.client}: {t.question!r}: {t.error}" for t in run.turns if t.error]
    assert not errors, errors[:5]
    assert not problems, problems[:5]
    assert len({t.client for t in run.turns}) == CLIENTS  # every client was answered
    assert len(run.turns) >= 3 * CLIENTS

    upload = run.upload
    assert upload is not None and upload.added, upload
    assert load.UPLOAD_OUTLET in upload.outlets  # the new outlet is ticked on the uploader's page
    assert upload.turn is not None and not upload.turn.error, upload.turn
    assert load.UPLOAD_ANSWER in upload.turn.reply and f"**{load.UPLOAD_OUTLET}**" in upload.turn.reply
    assert numbers["upload"]["answered_from_it"]
    during = numbers["upload"]["questions_during_upload"]
    assert during > 0 and numbers["upload"]["errors_during_upload"] == 0  # the swap happened under load
    # The other pages keep the outlets they showed and ticked, so they keep answering from those.
    later = [t for t in run.turns if t.question == load.UPLOAD_QUESTION and t.started >= upload.ended]
    assert all(load.UPLOAD_ANSWER not in t.reply for t in later)
    saved = [p.name for p in uploads.iterdir() if "solar" in p.name]
    assert saved == ["solar_plant.txt"]
    assert not [p for p in corpus_dir.iterdir() if "solar" in p.name]


def test_verify_catches_cross_talk_and_stale_answers(fake_index: Path, tmp_path: Path) -> None:
    """The checker itself: an answer meant for another question, or from the index as it was
    after the swap, is reported; the right one is not."""
    before = tmp_path / "index-before"
    shutil.copytree(fake_index, before)
    outlets = list(retriever_for(fake_index).outlets)
    first, second = load.QUESTIONS[0], load.QUESTIONS[1]
    right, wrong = ask(first, index_dir=fake_index).text, ask(second, index_dir=fake_index).text
    assert right != wrong
    turns = [
        load.Turn(0, first, outlets, (), started=0.0, ended=1.0, reply=right),
        load.Turn(1, first, outlets, (), started=0.0, ended=1.0, reply=wrong),  # someone else's answer
    ]
    assert load.verify(load.LoadRun(2, 0.0, 1.0, turns, None, []), before, fake_index) == [
        f"client 1: {first!r} after [] got {wrong!r}"
    ]

    upload_file = tmp_path / "solar.txt"
    upload_file.write_text(load.UPLOAD_ARTICLE, encoding="utf-8")
    assert add_files([upload_file], fake_index, tmp_path / "uploads").added
    everything = [*outlets, load.UPLOAD_OUTLET]
    stale = ask(load.UPLOAD_QUESTION, index_dir=before).text
    fresh = ask(load.UPLOAD_QUESTION, index_dir=fake_index).text
    assert load.UPLOAD_ANSWER in fresh and load.UPLOAD_ANSWER not in stale
    upload = load.UploadOutcome(started=10.0, ended=11.0)
    turns = [
        load.Turn(2, load.UPLOAD_QUESTION, everything, (), started=9.0, ended=10.5, reply=stale),  # during: either
        load.Turn(3, load.UPLOAD_QUESTION, everything, (), started=10.5, ended=12.0, reply=fresh),
        load.Turn(4, load.UPLOAD_QUESTION, everything, (), started=11.5, ended=12.0, reply=stale),  # after: stale
        load.Turn(5, load.UPLOAD_QUESTION, everything, (), started=8.0, ended=9.0, reply=fresh),  # before: too new
    ]
    problems = load.verify(load.LoadRun(4, 8.0, 12.0, turns, upload, []), before, fake_index)
    assert [p.split(":")[0] for p in problems] == ["client 4", "client 5"]
