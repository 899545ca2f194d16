"""The web chat under concurrent clients: `python bench/load.py` -> one JSON line on stdout.

Serves the real model over an index of a copy of ./corpus (in a temporary directory, so that
the upload never lands in the repository) from a separate process, then 20 clients, each with
its own gradio_client.Client and so its own conversation, ask questions for about 30 s while
one more client uploads a new article and asks about it. Every answer is then checked against
rag.api.ask for the same question, conversation and outlets, on the index as it was before the
upload, after it, or either for a question that overlapped the upload.

    python bench/load.py [--clients 20] [--seconds 30]

The load driver (`run_load`, `verify`, `summary`) is shared with tests/test_load.py, which runs
it in-process against an index built with the fast HashEmbedder.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answer import ABSTAIN_TEXT  # noqa: E402
from rag.api import ask, retriever_for  # noqa: E402
from rag.chat import md_literal  # noqa: E402

QUESTIONS = (
    "Who led the American side in the virtual meeting?",
    "How many Hamas fighters are in Rafah?",
    "According to JNS, how many tents did Israel order?",
    "And who represented the Israeli side?",
    "What did the US propose about the Egypt-Gaza border?",
    "What is the capital of Australia?",  # abstains
    "How many photovoltaic panels were installed at the crossing?",  # abstains until the upload
    "When was the virtual meeting held?",
    "What will harm Israel's security?",
)
UPLOAD_QUESTION = "How many photovoltaic panels were installed at the crossing?"
UPLOAD_OUTLET = "The Desert Courier"
UPLOAD_ANSWER = "4,200 photovoltaic panels"
UPLOAD_ARTICLE = (
    f"Title: Rafah crossing gets a new solar plant\nOutlet: {UPLOAD_OUTLET}\n\n"
    "Engineers installed 4,200 photovoltaic panels at the Kerem Shalom crossing on Tuesday. "
    "The photovoltaic plant will power the cargo scanners, the operator said.\n"
)
SUBSET = ["JNS", "The Times of Israel"]  # every fifth client searches only these


@dataclass
class Turn:
    """One question: who asked it, with which conversation and outlets, when, and what came back."""

    client: int
    question: str
    outlets: list[str]
    history: tuple[str, ...]
    started: float
    ended: float = 0.0
    reply: str = ""
    error: str = ""

    @property
    def ms(self) -> float:
        return (self.ended - self.started) * 1000


@dataclass
class UploadOutcome:
    started: float = 0.0
    ended: float = 0.0
    status: str = ""
    outlets: list[str] = field(default_factory=list)
    error: str = ""
    turn: Turn | None = None  # the question about the new article, asked right after

    @property
    def added(self) -> bool:
        return not self.error and "Added" in self.status and UPLOAD_OUTLET in self.status


@dataclass
class LoadRun:
    clients: int
    started: float
    ended: float
    turns: list[Turn]
    upload: UploadOutcome | None
    other_errors: list[str]


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def _client(url: str) -> Any:
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, analytics_enabled=False)


def _ask_turn(client: Any, number: int, question: str, outlets: list[str], conversation: list[str]) -> Turn:
    """Ask through /ask and check the page's reply is this client's own conversation plus one turn."""
    turn = Turn(number, question, list(outlets), tuple(q for q, _ in _pairs(conversation)), time.perf_counter())
    try:
        messages, _sources, box = client.predict(question, outlets, api_name="/ask")
    except Exception as exc:  # the client reports a server-side error as an exception
        turn.ended = time.perf_counter()
        turn.error = f"{type(exc).__name__}: {exc}"[:300]
        return turn
    turn.ended = time.perf_counter()
    texts = [(m.get("role"), _text(m)) for m in messages]
    turn.reply = texts[-1][1] if texts and texts[-1][0] == "assistant" else ""
    own = [(role, text) for q, a in _pairs(conversation) for role, text in (("user", md_literal(q)), ("assistant", a))]
    if box != "":
        turn.error = f"the question box was not cleared: {box!r}"
    elif texts[:-2] != own or texts[-2:-1] != [("user", md_literal(question))]:
        turn.error = f"the conversation came back as someone else's ({len(texts)} messages, expected {len(own) + 2})"
    elif turn.reply.startswith("⚠️"):
        turn.error = f"error reply: {turn.reply[:200]}"
    else:
        conversation.extend((question, turn.reply))
    return turn


def _pairs(conversation: list[str]) -> list[tuple[str, str]]:
    return list(zip(conversation[::2], conversation[1::2], strict=True))


def run_load(
    url: str,
    outlets: Sequence[str],
    *,
    clients: int = 20,
    seconds: float = 30.0,
    upload_file: Path | None = None,
    upload_after: int = 40,
    max_turns: int = 60,
    connect_timeout: float = 120.0,
) -> LoadRun:
    """`clients` clients ask QUESTIONS in turn, each from its own session, until `seconds` have passed
    (and the upload, if any, is done; at most three times `seconds`). With `upload_file`, one more
    client uploads it once `upload_after` answers have come back (or half the time has passed), then
    asks UPLOAD_QUESTION. A client starts a new conversation (/clear) after `max_turns` questions or
    a failed one."""
    outlets = list(outlets)  # all ticked: what a page shows and sends (gradio refuses outlets it does not show)
    lock = threading.Condition()
    turns: list[Turn] = []
    other_errors: list[str] = []
    upload = UploadOutcome() if upload_file is not None else None
    upload_done = threading.Event()
    if upload is None:
        upload_done.set()
    parties = clients + (1 if upload is not None else 0)
    clock: dict[str, float] = {}
    barrier = threading.Barrier(parties, action=lambda: clock.setdefault("start", time.perf_counter()))

    def connect() -> Any:
        try:
            client = _client(url)
        except Exception as exc:
            with lock:
                other_errors.append(f"connect: {type(exc).__name__}: {exc}"[:300])
            barrier.abort()
            raise
        barrier.wait(timeout=connect_timeout)
        return client

    def keep_going() -> bool:
        now = time.perf_counter() - clock["start"]
        return now < 3 * seconds and (now < seconds or not upload_done.is_set())

    def asker(number: int) -> None:
        try:
            client = connect()
        except Exception:
            return
        mine = SUBSET if number % 5 == 4 else outlets
        conversation: list[str] = []
        n = 0
        try:
            while keep_going():
                turn = _ask_turn(client, number, QUESTIONS[(number + n) % len(QUESTIONS)], mine, conversation)
                if turn.error or len(conversation) >= 2 * max_turns:  # one failure is counted once
                    client.predict(api_name="/clear")
                    conversation.clear()
                n += 1
                with lock:
                    turns.append(turn)
                    lock.notify_all()
        except Exception as exc:
            with lock:
                other_errors.append(f"client {number}: {type(exc).__name__}: {exc}"[:300])
        finally:
            client.close()

    def uploader() -> None:
        from gradio_client import handle_file

        assert upload is not None and upload_file is not None
        try:
            client = connect()
        except Exception:
            upload_done.set()
            return
        try:
            with lock:
                late = clock["start"] + seconds / 2  # upload by half time whatever the pace
                lock.wait_for(lambda: len(turns) >= upload_after or time.perf_counter() > late, timeout=seconds)
            upload.started = time.perf_counter()
            try:
                status, ticked, _ = client.predict([handle_file(str(upload_file))], outlets, api_name="/upload")
                upload.status = str(status)
                upload.outlets = list(ticked.get("value", [])) if isinstance(ticked, dict) else []
            except Exception as exc:
                upload.error = f"{type(exc).__name__}: {exc}"[:300]
            upload.ended = time.perf_counter()
            # This page now shows and ticks the new outlet; the other clients' pages keep their outlets.
            upload.turn = _ask_turn(client, clients, UPLOAD_QUESTION, upload.outlets or outlets, [])
        finally:
            upload_done.set()
            client.close()

    threads = [threading.Thread(target=asker, args=(i,), name=f"load-{i}", daemon=True) for i in range(clients)]
    if upload is not None:
        threads.append(threading.Thread(target=uploader, name="load-upload", daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=connect_timeout + 3 * seconds + 120)
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        other_errors.append(f"threads still running: {stuck}")
    if barrier.broken and not other_errors:
        other_errors.append("the clients did not all connect")
    started = clock.get("start", time.perf_counter())
    with lock:
        done = list(turns)
    ended = max((t.ended for t in done), default=started)
    return LoadRun(clients, started, ended, done, upload, other_errors)


def warm_up(url: str, outlets: Sequence[str]) -> float:
    """Ask each question once, alone, so that the load measures a server past its first answers
    (the first ones embed every sentence of the passages they read). Returns the seconds it took."""
    started = time.perf_counter()
    client = _client(url)
    try:
        for question in QUESTIONS:
            client.predict(api_name="/clear")
            client.predict(question, list(outlets), api_name="/ask")
    finally:
        client.close()
    return time.perf_counter() - started


def _wanted(outlets: Sequence[str], index_dir: Path) -> list[str] | None:
    """What the page passes to rag.api.ask for these ticked outlets (rag.chat._outlet_filter)."""
    chosen = [o for o in outlets if o.strip()]
    return None if set(retriever_for(index_dir).outlets) <= set(chosen) else chosen


def quotes_an_outlet(reply: str, quotes: Sequence[tuple[str, str]]) -> bool:
    """The reply, read as plain text, names an outlet in bold and quotes one of its sentences."""
    plain = html.unescape(re.sub(r"\\(.)", r"\1", reply))
    return any(f"**{outlet}**" in plain and "> " + text.replace("\n", " ") in plain for outlet, text in quotes)


# An outlet-scoped abstention names the outlets that do report it instead of the plain sentence.
_SCOPED_ABSTENTION = re.compile(r"None of the (?:ticked|named) outlets \(.+?\) reports this")


def _says_it_abstains(reply: str) -> bool:
    return ABSTAIN_TEXT in reply or bool(_SCOPED_ABSTENTION.search(reply))


def verify(run: LoadRun, before: Path, after: Path) -> list[str]:
    """Problems: each answered turn must be exactly what rag.api.ask gives for its question,
    conversation and outlets, on `before` (the index as it was, a copy) if it ended before the
    upload began, on `after` (the index now) if it began after the upload returned, else on either;
    and must quote an outlet or abstain."""
    cache: dict[tuple[Any, ...], tuple[str, bool, tuple[tuple[str, str], ...]]] = {}

    def expected(turn: Turn, index_dir: Path) -> tuple[str, bool, tuple[tuple[str, str], ...]]:
        wanted = _wanted(turn.outlets, index_dir)
        key = (str(index_dir), turn.question, turn.history, tuple(wanted) if wanted is not None else None)
        if key not in cache:
            answer = ask(turn.question, history=turn.history, outlets=wanted, index_dir=index_dir)
            cache[key] = (answer.text, answer.abstained, tuple((q.outlet, q.text) for q in answer.quotes))
        return cache[key]

    upload = run.upload
    problems: list[str] = []
    turns = list(run.turns) + ([upload.turn] if upload is not None and upload.turn is not None else [])
    for turn in turns:
        if turn.error:
            continue  # counted as errors
        if upload is None or upload.ended == 0.0 or turn.ended <= upload.started:
            candidates = [before]
        elif turn.started >= upload.ended:
            candidates = [after]
        else:
            candidates = [before, after]
        answers = [expected(turn, c) for c in candidates]
        match = next((a for a in answers if a[0] == turn.reply), None)
        if match is None:
            problems.append(f"client {turn.client}: {turn.question!r} after {list(turn.history)} got {turn.reply!r}")
        elif not (_says_it_abstains(turn.reply) if match[1] else quotes_an_outlet(turn.reply, match[2])):
            problems.append(f"client {turn.client}: {turn.question!r} neither quotes nor abstains: {turn.reply!r}")
    return problems


def summary(run: LoadRun, problems: Sequence[str] = ()) -> dict[str, Any]:
    """The numbers: answered, errors, latency percentiles, throughput, and the upload."""
    answered = [t for t in run.turns if not t.error]
    latencies = np.array([t.ms for t in run.turns]) if run.turns else np.zeros(1)
    span = max(run.ended - run.started, 1e-9)
    out: dict[str, Any] = {
        "clients": run.clients,
        "seconds": round(span, 1),
        "questions": len(run.turns),
        "answered": len(answered),
        "errors": len(run.turns) - len(answered) + len(run.other_errors),
        "wrong_answers": len(problems),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p95_ms": round(float(np.percentile(latencies, 95)), 1),
        "max_ms": round(float(latencies.max()), 1),
        "throughput_qps": round(len(answered) / span, 2),
    }
    upload = run.upload
    if upload is not None:
        during = [t for t in run.turns if upload.ended and t.started < upload.ended and t.ended > upload.started]
        reply = upload.turn.reply if upload.turn is not None else ""
        out["upload"] = {
            "added": upload.added,
            "error": upload.error,
            "seconds": round(upload.ended - upload.started, 2) if upload.ended else None,
            "answered_from_it": UPLOAD_ANSWER in reply and f"**{UPLOAD_OUTLET}**" in reply,
            "questions_during_upload": len(during),
            "errors_during_upload": sum(1 for t in during if t.error),
        }
    return out


# ---------------------------------------------------------------------------------------------
# The benchmark: the real model, the server in its own process.

SERVER = """
import sys
from pathlib import Path
from rag.chat import build_app, launch
launch(build_app(Path(sys.argv[1]), Path(sys.argv[2])), "127.0.0.1", int(sys.argv[3]), block=True, quiet=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_server(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url + "config", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)  # polling the real condition (the server answers), bounded by the deadline
    raise RuntimeError(f"the server did not answer at {url} within {timeout:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--turns", type=Path, help="also write every question's timings here, one JSON line each")
    args = parser.parse_args(argv)
    began = time.perf_counter()

    def note(what: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f} s] {what}", file=sys.stderr, flush=True)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from rag.index import build_index

    with tempfile.TemporaryDirectory(prefix="rag-load-") as tmp:
        root = Path(tmp)
        corpus, index_dir, before = root / "corpus", root / "index", root / "index-before"
        shutil.copytree(ROOT / "corpus", corpus)
        report = build_index([corpus], index_dir)
        note(f"built the index: {report.chunks} chunks")
        shutil.copytree(index_dir, before)
        upload_file = root / "upload" / "solar plant.txt"
        upload_file.parent.mkdir()
        upload_file.write_text(UPLOAD_ARTICLE, encoding="utf-8")
        outlets = list(retriever_for(index_dir).outlets)

        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(index_dir), str(corpus), str(port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_server(url, server, timeout=180)
            note(f"the server is up at {url}")
            warm = warm_up(url, outlets)
            note(f"warmed up: each question asked once in {warm:.1f} s")
            run = run_load(url, outlets, clients=args.clients, seconds=args.seconds, upload_file=upload_file)
            note(f"load done: {len(run.turns)} questions")
        finally:
            server.terminate()
            try:
                _, err = server.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                _, err = server.communicate()
        problems = verify(run, before, index_dir)
        note("answers checked against rag.api.ask")
        result = summary(run, problems)
        if args.turns:
            with args.turns.open("w", encoding="utf-8") as out:
                for t in run.turns:
                    row = {"client": t.client, "question": t.question, "turn": len(t.history)}
                    row |= {"start_s": round(t.started - run.started, 3), "ms": round(t.ms, 1), "error": t.error}
                    out.write(json.dumps(row) + "\n")
        result |= {
            "model": retriever_for(index_dir).stored.manifest.model,
            "chunks": report.chunks,
            "ask_concurrency_limit": 1,
            "warmup_s": round(warm, 1),
            "server_cores": os.cpu_count(),
        }
        for line in [*run.other_errors, *problems[:5], *(t.error for t in run.turns if t.error)][:10]:
            print(line, file=sys.stderr)
        if result["errors"] and err:
            print(err.decode(errors="replace")[-3000:], file=sys.stderr)
    print(json.dumps(result), flush=True)
    return 0 if not result["errors"] and not problems and result.get("upload", {}).get("added") else 1


if __name__ == "__main__":
    raise SystemExit(main())
