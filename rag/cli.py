"""The `rag` command: index, search, ask, serve, eval. Errors are one line and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from rag import validate
from rag.errors import RagError, one_line


def _index_dir(args: argparse.Namespace) -> Path:
    return validate.path(args.index_dir or os.environ.get("RAG_INDEX_DIR") or "index", "--index-dir")


def cmd_index(args: argparse.Namespace) -> int:
    from rag.api import build_index
    from rag.index import BuildSettings
    from rag.store import read_manifest

    index_dir = _index_dir(args)
    if args.compact:
        return _compact(index_dir, args)
    sources = args.paths
    if not sources:
        # No paths: the sources the index was built from, else ./corpus.
        try:
            sources = read_manifest(index_dir, any_format=True).settings.get("sources") or ["corpus"]
        except RagError:
            sources = ["corpus"]
    # Updating an index keeps the model and chunking it was built with, unless told otherwise.
    try:
        settings = BuildSettings.from_manifest(read_manifest(index_dir, any_format=True))
    except RagError:
        settings = BuildSettings()
    model = args.model or os.environ.get("RAG_MODEL")
    if model:
        settings = replace(settings, model=model)
    report = build_index(sources, index_dir, settings=settings, rebuild=args.rebuild, progress=not args.quiet)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
        return 0
    for label, names in (
        ("added", report.added),
        ("updated", report.updated),
        ("removed", report.removed),
        ("skipped", report.skipped),
    ):
        for name in names:
            print(f"{label:>9}  {one_line(name)}")
    # File names are whatever the files are called: escaped, none can forge a line of the report.
    for source, reason in report.rejected:
        print(f" rejected  {one_line(source)}: {one_line(reason)}")
    for warning in report.warnings:
        print(f"  warning  {one_line(warning)}")
    print(report.summary())
    return 0


def _compact(index_dir: Path, args: argparse.Namespace) -> int:
    from rag.index import compact_index

    if args.paths or args.rebuild or args.model:
        raise RagError("--compact merges the index as it is; run it without paths, --rebuild or --model")
    manifest = compact_index(index_dir)
    stats = {
        "segments": len(manifest.segments),
        "documents": len(manifest.documents),
        "generation": manifest.generation,
    }
    if args.json:
        print(json.dumps(stats))
    else:
        segments, generation = stats["segments"], stats["generation"]
        print(f"compacted: {stats['documents']} documents in {segments} segment(s), generation {generation}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from rag.api import retrieve
    from rag.dates import attribution

    passages = retrieve(
        args.query,
        k=args.k,
        outlets=args.outlet or None,
        index_dir=_index_dir(args),
        as_of=args.as_of,
        since=args.since,
        until=args.until,
    )
    if args.json:
        print(json.dumps([asdict(p) for p in passages], ensure_ascii=False, indent=1))
        return 0
    for rank, p in enumerate(passages, 1):
        where = f"{p.source}:{p.start}-{p.end}" + (f" (page {p.page})" if p.page else "")
        who = attribution(p.outlet, p.date or "")
        print(f"{rank}. {one_line(who)} — {one_line(p.title)}  [{p.score:.4f}]\n   {one_line(where)}")
        print("   " + p.text.replace("\n", "\n   "))
        print()
    if not passages:
        print("no passages found")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.api import ask, timeline

    answer = ask(
        args.question,
        outlets=args.outlet or None,
        index_dir=_index_dir(args),
        as_of=args.as_of,
        since=args.since,
        until=args.until,
    )
    if args.json:
        print(json.dumps(asdict(answer), ensure_ascii=False, indent=1))
    else:
        print(answer.text)
        if args.timeline and answer.quotes:
            print("\nTimeline\n" + timeline(answer))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from rag.chat import serve

    uploads_dir = Path(args.uploads_dir or os.environ.get("RAG_UPLOADS_DIR") or "uploads")
    serve(index_dir=_index_dir(args), host=args.host, port=args.port, uploads_dir=uploads_dir)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.evaluate import run_eval

    report = run_eval(
        Path(args.file), index_dir=_index_dir(args), k=args.k, ask=not args.retrieval_only, as_of=args.as_of
    )
    print(json.dumps(report, ensure_ascii=False, indent=1) if args.json else _format_eval(report))
    return 0


def _format_eval(report: dict[str, object]) -> str:
    lines = []
    for key, value in report.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines.extend(f"  {k}: {v}" for k, v in value.items())
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Question answering over news articles, by quoting them.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_dates(p: argparse.ArgumentParser) -> None:
        p.add_argument("--as-of", metavar="DATE", help="the day the question is asked (default today): nothing later")
        p.add_argument("--since", metavar="DATE", help="only articles published on or after DATE (YYYY-MM-DD)")
        p.add_argument("--until", metavar="DATE", help="only articles published on or before DATE (YYYY-MM-DD)")

    def with_index(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--index-dir", help="index directory (default $RAG_INDEX_DIR or ./index)")
        return p

    p = with_index(sub.add_parser("index", help="build or update the index from files or folders"))
    p.add_argument("paths", nargs="*", help="files or folders (default: the index's sources, else ./corpus)")
    p.add_argument("--rebuild", action="store_true", help="embed everything again")
    p.add_argument("--compact", action="store_true", help="merge the index's segments into one (no re-embedding)")
    p.add_argument("--model", help="sentence-transformers model name or path (default all-MiniLM-L6-v2)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_index)

    p = with_index(sub.add_parser("search", help="passages with their sources"))
    p.add_argument("query")
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--outlet", action="append", help="only this outlet (repeatable)")
    with_dates(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = with_index(sub.add_parser("ask", help="answer a question by quoting the outlets"))
    p.add_argument("question")
    p.add_argument("--outlet", action="append", help="only this outlet (repeatable)")
    with_dates(p)
    p.add_argument("--timeline", action="store_true", help="also list the quotes by publication day")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ask)

    p = with_index(sub.add_parser("serve", help="the web chat"))
    p.add_argument("--host", default=os.environ.get("RAG_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("RAG_PORT", "7860")))
    p.add_argument("--uploads-dir", help="where files added on the page are kept (default $RAG_UPLOADS_DIR, ./uploads)")
    p.set_defaults(func=cmd_serve)

    p = with_index(sub.add_parser("eval", help="score a QA file or a benchmark query file against an index"))
    p.add_argument("file")
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--retrieval-only", action="store_true", help="skip rag.ask")
    p.add_argument("--as-of", action="store_true", help="ask each question on its question_date")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    fresh = not logging.getLogger().handlers
    logging.basicConfig(level=level, format="%(levelname)s %(message)s")
    if fresh:  # bm25s sets its own logger to DEBUG when imported: filter at the handler too
        for handler in logging.getLogger().handlers:
            handler.setLevel(level)
            handler.setFormatter(_OneLineFormatter("%(levelname)s %(message)s"))
    for noisy in ("sentence_transformers", "transformers", "httpx", "bm25s", "faiss"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    for stream in (sys.stdout, sys.stderr):
        # A file name that is not UTF-8 (or a passage with a lone surrogate) prints escaped, not as
        # a UnicodeEncodeError.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        query_embedder = os.environ.get("RAG_QUERY_EMBEDDER")
        if query_embedder:  # "torch": questions load the model even when the index has its ONNX copy
            from rag.embed import set_query_embedder

            set_query_embedder(query_embedder)
        return int(args.func(args))
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the file system said no (permissions, a full disk...): one line too
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {one_line(exc.strerror or str(exc))}{one_line(where)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line for the person; -v shows the traceback
        if args.verbose:
            raise
        print(
            f"error: unexpected {type(exc).__name__}: {one_line(str(exc))} (run with -v for details)", file=sys.stderr
        )
        return 1


class _OneLineFormatter(logging.Formatter):
    """Log messages name files: escaped so that none forges a line (tracebacks stay as they are)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return one_line(super().formatMessage(record))


if __name__ == "__main__":
    sys.exit(main())
