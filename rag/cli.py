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

from rag.errors import RagError


def _index_dir(args: argparse.Namespace) -> Path:
    return Path(args.index_dir or os.environ.get("RAG_INDEX_DIR") or "index")


def cmd_index(args: argparse.Namespace) -> int:
    from rag.index import BuildSettings, build_index
    from rag.store import read_manifest

    index_dir = _index_dir(args)
    sources = args.paths
    if not sources:
        # No paths: the sources the index was built from, else ./corpus.
        try:
            sources = read_manifest(index_dir).settings.get("sources") or ["corpus"]
        except RagError:
            sources = ["corpus"]
    # Updating an index keeps the model and chunking it was built with, unless told otherwise.
    try:
        settings = BuildSettings.from_manifest(read_manifest(index_dir))
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
            print(f"{label:>9}  {name}")
    for source, reason in report.rejected:
        print(f" rejected  {source}: {reason}")
    for warning in report.warnings:
        print(f"  warning  {warning}")
    print(report.summary())
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from rag.api import retrieve

    passages = retrieve(args.query, k=args.k, outlets=args.outlet or None, index_dir=_index_dir(args))
    if args.json:
        print(json.dumps([asdict(p) for p in passages], ensure_ascii=False, indent=1))
        return 0
    for rank, p in enumerate(passages, 1):
        where = f"{p.source}:{p.start}-{p.end}" + (f" (page {p.page})" if p.page else "")
        print(f"{rank}. {p.outlet} — {p.title}  [{p.score:.4f}]\n   {where}")
        print("   " + p.text.replace("\n", "\n   "))
        print()
    if not passages:
        print("no passages found")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.api import ask

    answer = ask(args.question, outlets=args.outlet or None, index_dir=_index_dir(args))
    if args.json:
        print(json.dumps(asdict(answer), ensure_ascii=False, indent=1))
    else:
        print(answer.text)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from rag.chat import serve

    serve(index_dir=_index_dir(args), host=args.host, port=args.port)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.evaluate import run_eval

    report = run_eval(Path(args.file), index_dir=_index_dir(args), k=args.k, ask=not args.retrieval_only)
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

    def with_index(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--index-dir", help="index directory (default $RAG_INDEX_DIR or ./index)")
        return p

    p = with_index(sub.add_parser("index", help="build or update the index from files or folders"))
    p.add_argument("paths", nargs="*", help="files or folders (default: the index's sources, else ./corpus)")
    p.add_argument("--rebuild", action="store_true", help="embed everything again")
    p.add_argument("--model", help="sentence-transformers model name or path (default all-MiniLM-L6-v2)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_index)

    p = with_index(sub.add_parser("search", help="passages with their sources"))
    p.add_argument("query")
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--outlet", action="append", help="only this outlet (repeatable)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = with_index(sub.add_parser("ask", help="answer a question by quoting the outlets"))
    p.add_argument("question")
    p.add_argument("--outlet", action="append", help="only this outlet (repeatable)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ask)

    p = with_index(sub.add_parser("serve", help="the web chat"))
    p.add_argument("--host", default=os.environ.get("RAG_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("RAG_PORT", "7860")))
    p.set_defaults(func=cmd_serve)

    p = with_index(sub.add_parser("eval", help="score a QA file or a benchmark query file against an index"))
    p.add_argument("file")
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--retrieval-only", action="store_true", help="skip rag.ask")
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
    for noisy in ("sentence_transformers", "transformers", "httpx", "bm25s", "faiss"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        query_embedder = os.environ.get("RAG_QUERY_EMBEDDER")
        if query_embedder:  # "torch": questions load the model even when the index has its ONNX copy
            from rag.embed import set_query_embedder

            set_query_embedder(query_embedder)
        return int(args.func(args))
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
