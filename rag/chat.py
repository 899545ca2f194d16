"""The web chat (`rag serve`, `python app.py`): ask questions, read the quoted passages, add articles.

Everything a source or a person typed is shown as text: article text, headlines, outlet names,
file names and questions are HTML-escaped before they reach the page (`escape`, `md_literal`),
and quoted sentences are marked in their passages with offsets, never by re-parsing HTML.

The model and index are loaded once when the page is built; questions are answered by
`rag.api.ask`, uploads are added by an incremental `rag.index.build_index` of the index's own
sources, after which the retriever reloads the new index (rag.retrieve.get_retriever).
"""

from __future__ import annotations

import html
import json
import logging
import re
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gradio as gr

from rag.answer import md_literal
from rag.api import ask, retriever_for, timeline_entries
from rag.dates import display_date
from rag.errors import IngestError, RagError
from rag.index import BuildReport, BuildSettings, build_index
from rag.ingest import DEFAULT_MAX_BYTES, SUFFIXES, read_document
from rag.retrieve import Retriever
from rag.store import MANIFEST, read_manifest
from rag.types import Answer, Passage, Quote

log = logging.getLogger(__name__)

EXAMPLES = (
    "Who led the American side in the virtual meeting?",
    "How many Hamas fighters are in Rafah?",
    "According to JNS, how many tents did Israel order?",
)
EMPTY_QUESTION_TEXT = "Please type a question about the articles, for example one of the examples below the chat."
NO_OUTLET_TEXT = "Tick at least one outlet under *Outlets* to search."
MAX_NAME_CHARS = 100
SOURCES_PLACEHOLDER = '<p class="rag-empty">Passages the answer draws on appear here.</p>'

# The sources panel's own CSS; gr.HTML scopes it to the component.
SOURCES_CSS = """
.rag-passage { border: 1px solid #d0d7de; border-radius: 8px; padding: 8px 12px; margin: 0 0 10px 0; }
.rag-passage.rag-used { border-left: 4px solid #d4a72c; }
.rag-meta { font-size: 0.85em; opacity: 0.85; margin-bottom: 4px; }
.rag-outlet { font-weight: 600; }
.rag-title { font-style: italic; }
.rag-text { white-space: pre-wrap; font-size: 0.92em; line-height: 1.45; }
.rag-text mark { background: #fff3a3; color: #1f2328; padding: 0 1px; border-radius: 2px; }
.rag-empty, .rag-note { opacity: 0.75; font-size: 0.9em; }
"""


# ---------------------------------------------------------------------------------------------
# Pure helpers: escaping, highlighting, file names. No gradio, no index.


def escape(text: object) -> str:
    """Text as HTML text: `<script>` shows as `<script>`, quotes cannot end an attribute."""
    return html.escape(str(text), quote=True)


def merge_spans(spans: Iterable[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """Spans clipped to [0, length), empty ones dropped, overlapping or touching ones merged."""
    clipped = sorted((max(0, s), min(length, e)) for s, e in spans)
    merged: list[tuple[int, int]] = []
    for start, end in clipped:
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def highlight(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text` escaped as HTML with the character ranges `spans` wrapped in <mark>."""
    parts: list[str] = []
    at = 0
    for start, end in merge_spans(spans, len(text)):
        parts.append(escape(text[at:start]))
        parts.append(f"<mark>{escape(text[start:end])}</mark>")
        at = end
    parts.append(escape(text[at:]))
    return "".join(parts)


def quote_spans(passage: Passage, quotes: Iterable[Quote]) -> list[tuple[int, int]]:
    """Where the quotes fall inside the passage, as offsets into passage.text."""
    spans = []
    for q in quotes:
        same_doc = q.doc_id == passage.doc_id if (q.doc_id and passage.doc_id) else q.source == passage.source
        if same_doc and q.start < passage.end and q.end > passage.start:
            spans.append((q.start - passage.start, q.end - passage.start))
    return merge_spans(spans, len(passage.text))


def _safe_url(url: str) -> str | None:
    return url if re.match(r"https?://[^\s\"'<>]+$", url or "") else None


def passage_html(passage: Passage, quotes: Sequence[Quote]) -> str:
    spans = quote_spans(passage, quotes)
    meta = [f'<span class="rag-outlet">{escape(passage.outlet)}</span>']
    if passage.title:
        meta.append(f'<span class="rag-title">{escape(passage.title)}</span>')
    if passage.date:
        meta.append(f'<span class="rag-date">{escape(display_date(passage.date) or passage.date)}</span>')
    where = Path(passage.source).name + (f", page {passage.page}" if passage.page else "")
    url = _safe_url(passage.url)
    if url:
        where_html = f'<a href="{escape(url)}" target="_blank" rel="noopener noreferrer">{escape(where)}</a>'
    else:
        where_html = escape(where)
    meta.append(f'<span class="rag-file">{where_html}</span>')
    css = "rag-passage rag-used" if spans else "rag-passage"
    return (
        f'<div class="{css}"><div class="rag-meta">{" · ".join(meta)}</div>'
        f'<div class="rag-text">{highlight(passage.text, spans)}</div></div>'
    )


def merge_passages(passages: Sequence[Passage]) -> list[Passage]:
    """Passages with overlapping or touching passages of the same document joined into one, so
    no sentence is shown (or highlighted) twice; in the order of each group's first passage."""
    groups: dict[str, list[tuple[int, Passage]]] = {}
    for rank, passage in enumerate(passages):
        groups.setdefault(passage.doc_id or passage.source, []).append((rank, passage))
    merged: list[tuple[int, Passage]] = []
    for group in groups.values():
        group.sort(key=lambda item: (item[1].start, -item[1].end))
        rank, current = group[0]
        for next_rank, passage in group[1:]:
            at = passage.start - current.start  # >= 0: sorted by start
            shared = min(current.end, passage.end) - passage.start
            # Offsets index one document text, so the shared part must read the same in both;
            # when it does not (a stale index), they stay two passages rather than a wrong one.
            if shared >= 0 and passage.text[:shared] == current.text[at : at + shared]:
                if passage.end > current.end:
                    current = replace(current, text=current.text + passage.text[shared:], end=passage.end)
                current = replace(current, score=max(current.score, passage.score))
                rank = min(rank, next_rank)
            else:
                merged.append((rank, current))
                rank, current = next_rank, passage
        merged.append((rank, current))
    return [p for _, p in sorted(merged, key=lambda item: item[0])]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def sources_html(answer: Answer | None) -> str:
    """The sources panel for an answer: the passages quoted from, each with its outlet, headline,
    date and file and the quoted sentences marked; overlapping passages of one article merged;
    the other passages found behind a "more passages" control."""
    if answer is None or not answer.passages:
        return SOURCES_PLACEHOLDER
    passages = merge_passages(answer.passages)
    quoted = [p for p in passages if quote_spans(p, answer.quotes)]
    rest = [p for p in passages if not quote_spans(p, answer.quotes)]
    # In the order the answer quotes them.
    quoted.sort(key=lambda p: min(n for n, q in enumerate(answer.quotes) if quote_spans(p, [q])))
    if answer.abstained or not quoted:
        note = "None of the passages found answers the question."
        summary = f"Show the {_plural(len(rest), 'closest passage')}"
    else:
        note = f"{_plural(len(quoted), 'passage')} quoted; quoted sentences are highlighted."
        summary = f"{_plural(len(rest), 'more passage')} found but not quoted"
    body = "".join(passage_html(p, answer.quotes) for p in quoted)
    if rest:
        hidden = "".join(passage_html(p, answer.quotes) for p in rest)
        body += f'<details class="rag-more"><summary>{escape(summary)}</summary>{hidden}</details>'
    window = f'<p class="rag-window">{escape(answer.window)}</p>' if answer.window else ""
    return f'<div class="rag-sources">{window}<p class="rag-note">{escape(note)}</p>{body}{timeline_html(answer)}</div>'


def timeline_html(answer: Answer) -> str:
    """The quotes by publication day, oldest first: who reported what, and when ("" for fewer
    than two dated quotes, where there is no order to show)."""
    entries = timeline_entries(answer)
    if sum(1 for e in entries if e.date) < 2:
        return ""
    items = "".join(
        f'<li><span class="rag-date">{escape(display_date(e.date) or "Undated")}</span> · '
        f'<span class="rag-outlet">{escape(e.quote.outlet)}</span>: {escape(e.quote.text)}</li>'
        for e in entries
    )
    return f'<details class="rag-timeline" open><summary>Timeline</summary><ol>{items}</ol></details>'


def safe_filename(name: str) -> str:
    """A file name safe to save in the sources folder: no directories, `..`, hidden-file dot,
    shell or control characters; the suffix kept (lower-cased). Raises ValueError when nothing
    usable is left."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFKC", str(name)))[-1]
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = re.sub(r"[^\w.-]+", "_", stem)  # letters of any script, digits, _ . - only
    stem = re.sub(r"\.{2,}", ".", stem)
    stem = re.sub(r"_{2,}", "_", stem).strip("._- ")[:MAX_NAME_CHARS]
    suffix = re.sub(r"[^A-Za-z0-9]", "", suffix).lower()[:10]
    if not suffix:
        raise ValueError("the file name has no suffix; use .txt, .md, .html or .pdf")
    return f"{stem or 'upload'}.{suffix}"


def unique_destination(directory: Path, name: str, data: bytes) -> tuple[Path, bool]:
    """Where to save `data` as `name` in `directory` without overwriting a different file:
    (path, True) when a file with the same bytes is already there, else a free path."""
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate = directory / name
    n = 1
    while candidate.exists():
        try:
            if candidate.is_file() and candidate.read_bytes() == data:
                return candidate, True
        except OSError:
            pass
        candidate = directory / f"{stem}-{n}{suffix}"
        n += 1
    return candidate, False


# ---------------------------------------------------------------------------------------------
# Adding uploads to the index.


@dataclass
class UploadResult:
    added: list[str] = field(default_factory=list)  # lines of HTML-escaped text
    rejected: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    report: BuildReport | None = None
    error: str = ""

    def html(self) -> str:
        rows: list[str] = []
        if self.error:
            rows.append(f'<p class="rag-error"><strong>Nothing was added:</strong> {escape(self.error)}</p>')
        for label, items in (("Added", self.added), ("Rejected", self.rejected), ("Already there", self.unchanged)):
            if items:
                rows.append(f"<p><strong>{label}:</strong></p><ul>{''.join(f'<li>{i}</li>' for i in items)}</ul>")
        if self.report is not None:
            r = self.report
            rows.append(
                f'<p class="rag-note">The index holds {r.documents} articles in {r.chunks} passages '
                f"({r.embedded} embedded now, {r.seconds:.1f} s).</p>"
            )
        return "".join(rows) or "<p>No files were given.</p>"


def _build_settings(index_dir: Path) -> tuple[list[str], BuildSettings]:
    """The sources and settings the index was built with, so that an update re-embeds nothing else."""
    manifest = read_manifest(index_dir)
    return [str(s) for s in manifest.settings.get("sources") or []], BuildSettings.from_manifest(manifest)


def _covered(path: Path, sources: Sequence[str]) -> bool:
    target = path.resolve()
    for source in sources:
        root = Path(source).resolve()
        if target == root or target.is_relative_to(root):
            return True
    return False


def add_files(
    files: Sequence[str | Path],
    index_dir: Path,
    uploads_dir: Path,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Any = None,
) -> UploadResult:
    """Check, save and index uploaded files. A rejected file is not left in `uploads_dir`, and the
    index is only replaced when something was added (build_index commits atomically)."""
    result = UploadResult()
    retriever = retriever_for(index_dir)
    known = {d.doc_id: d.source for d in retriever.stored.documents.values()}
    written: list[tuple[Path, str]] = []  # (saved path, name shown)

    def step(fraction: float, desc: str) -> None:
        if progress is not None:
            progress(fraction, desc=desc)

    uploads_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rag-upload-") as staging:
        for number, upload in enumerate(files, 1):
            upload_path = Path(upload)
            shown = escape(upload_path.name)
            step(0.3 * number / max(1, len(files)), f"Checking {upload_path.name}")
            try:
                name = safe_filename(upload_path.name)
            except ValueError as exc:
                result.rejected.append(f"{shown}: {escape(exc)}")
                continue
            if Path(name).suffix not in SUFFIXES:
                result.rejected.append(f"{shown}: unsupported file type; use .txt, .md, .html or .pdf")
                continue
            try:
                size = upload_path.stat().st_size
                if size > max_bytes:
                    result.rejected.append(f"{shown}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit")
                    continue
                data = upload_path.read_bytes()
            except OSError:
                result.rejected.append(f"{shown}: the upload could not be read")
                continue
            # Read it under its new name outside the sources: a broken file never reaches them.
            staged = Path(staging) / str(number) / name  # same name: an outlet taken from it matches
            staged.parent.mkdir()
            staged.write_bytes(data)
            try:
                doc = read_document(staged, max_bytes=max_bytes)
            except IngestError as exc:
                result.rejected.append(f"{shown}: {escape(exc.reason)}")
                continue
            if doc.doc_id in known:
                result.unchanged.append(f"{shown}: already in the index as {escape(Path(known[doc.doc_id]).name)}")
                continue
            destination, same = unique_destination(uploads_dir, name, data)
            if same:
                result.unchanged.append(f"{shown}: already saved as {escape(destination.name)}")
                continue
            destination.write_bytes(data)
            known[doc.doc_id] = str(destination)
            written.append((destination, shown))

    if not written:
        return result

    def undo(paths: Iterable[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    try:
        sources, settings = _build_settings(index_dir)
        missing = [s for s in sources if not Path(s).exists()]
        if missing:
            raise RagError(f"the index's source {missing[0]} is not there (start the app where the index was built)")
        # The uploads folder itself becomes a source, so `rag index` (no paths) keeps every upload.
        if not _covered(uploads_dir, sources):
            sources.append(str(uploads_dir))
        step(0.4, "Embedding the new articles")
        report = build_index(sources, index_dir, settings=settings, progress=progress is not None)
    except RagError as exc:
        undo(p for p, _ in written)
        result.rejected.extend(f"{shown}: not added" for _, shown in written)
        result.error = str(exc)
        return result
    except Exception as exc:  # never leave half-added files behind, never show a traceback
        log.exception("indexing uploads failed")
        undo(p for p, _ in written)
        result.rejected.extend(f"{shown}: not added" for _, shown in written)
        result.error = f"indexing failed ({type(exc).__name__})"
        return result

    result.report = report
    rejected = {str(Path(s).resolve()): reason for s, reason in report.rejected}
    added = {str(Path(s).resolve()) for s in (*report.added, *report.updated)}
    fresh = retriever_for(index_dir)
    by_source = {str(Path(d.source).resolve()): d for d in fresh.stored.documents.values()}
    for path, shown in written:
        key = str(path.resolve())
        if key in rejected:
            path.unlink(missing_ok=True)
            result.rejected.append(f"{shown}: {escape(rejected[key])}")
        elif key in added and key in by_source:
            doc = by_source[key]
            saved = f" (saved as {escape(path.name)})" if escape(path.name) != shown else ""
            date = f", {escape(doc.date)}" if doc.date else ""
            notes = "".join(
                f"<br><small>note: {escape(w.replace(str(path), path.name))}</small>"
                for w in report.warnings
                if str(path) in w
            )
            result.added.append(f"{shown}{saved}: {escape(doc.outlet)} — <em>{escape(doc.title)}</em>{date}{notes}")
        else:
            path.unlink(missing_ok=True)
            result.unchanged.append(f"{shown}: same article as one already in the index")
    step(1.0, "Done")
    return result


# ---------------------------------------------------------------------------------------------
# The page.

SEARCHING_TEXT = "_Searching the articles…_"
SEARCHING_PANEL = '<p class="rag-empty">Looking for the passages…</p>'

# The page's own scrolling (the chat's autoscroll is off): while a question is being answered the
# end of the conversation is shown (the question and the working indicator); when the answer
# arrives its top is brought into view, in the chat and in the window, so it reads from its start.
SCROLL_JS = """
() => {
  const waiting = WAITING_TEXT;
  let shown = null;
  const settle = () => {
    const chat = document.querySelector('#rag-chat');
    const log = chat && chat.querySelector('[role=log]');
    const rows = chat ? chat.querySelectorAll('.message-row') : [];
    if (!log || rows.length === 0) { shown = null; return; }
    const last = rows[rows.length - 1];
    if (last.classList.contains('user-row') || last.innerText.includes(waiting)) {
      log.scrollTop = log.scrollHeight;
      shown = null;
      return;
    }
    const key = rows.length + ':' + last.innerText;
    if (key === shown) return;
    shown = key;
    // The answer's top, under its question when there is one; clear of the chat's label.
    const before = rows.length > 1 ? rows[rows.length - 2] : null;
    const from = before && before.classList.contains('user-row') ? before : last;
    const top = from.getBoundingClientRect().top - log.getBoundingClientRect().top;
    log.scrollTop = Math.max(0, log.scrollTop + top - 32);
    const onScreen = log.getBoundingClientRect().top;
    if (onScreen < 0 || onScreen > window.innerHeight / 2) window.scrollBy(0, onScreen - 8);
  };
  let pending = false;
  new MutationObserver(() => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; settle(); });
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}
""".replace("WAITING_TEXT", json.dumps(SEARCHING_TEXT.strip("_")))

# Narrow screens (phones): the columns stack, and the page's side margins and the chat's bubble
# margins give their room to the text. A <style> in the head, as gradio scopes `css=` to its
# content and the page margin is outside it.
PAGE_HEAD = """<style>
@media (max-width: 640px) {
  .gradio-container .main { padding-left: 8px !important; padding-right: 8px !important; }
  #rag-examples button { flex: 1 1 100% !important; min-width: 0 !important; }
  #rag-chat .message-row { margin-left: 2px !important; margin-right: 2px !important; max-width: 100% !important; }
}
</style>"""


def _new_conversation() -> dict[str, list[Any]]:
    return {"messages": [], "questions": []}


def _outlet_filter(selected: Sequence[str] | str | None, retriever: Retriever) -> list[str] | None:
    """None (all outlets) when none were given or every known outlet is ticked, else the ticked ones."""
    if selected is None:
        return None
    if isinstance(selected, str):  # one name from an API client, not a list of letters
        selected = [selected]
    chosen = [o for o in selected if isinstance(o, str) and o.strip()]
    if set(retriever.outlets) <= set(chosen):
        return None
    return chosen


def _in_upload_cache(path: Path) -> bool:
    """Whether `path` is a copy gradio made of an upload (in its temporary upload folder)."""
    from gradio.utils import get_upload_folder

    try:
        return path.resolve().is_relative_to(Path(get_upload_folder()).resolve())
    except OSError:
        return False


def _discard_upload_copies(paths: Iterable[Path]) -> None:
    """Delete gradio's temporary copies of uploads once they are saved (or rejected): the kept
    copy is the one in the uploads folder, nothing stays in the system's temporary folder."""
    for path in paths:
        if not _in_upload_cache(path):
            continue  # a file the caller owns (tests, Python callers): never delete it
        try:
            path.unlink(missing_ok=True)
            path.parent.rmdir()  # gradio's per-upload folder, when it is now empty
        except OSError:
            pass


def _uploaded_paths(files: Any) -> list[str]:
    """The paths of gradio's copies of uploaded files, from the file box's value as sent (one
    file or a list, each a path or gradio's file record with its "path")."""
    items = files if isinstance(files, list) else [files]
    paths = [item.get("path") if isinstance(item, dict) else item for item in items]
    return [str(path) for path in paths if isinstance(path, str | Path) and str(path)]


@dataclass
class ChatPage:
    index_dir: Path
    uploads_dir: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    _upload_lock: threading.Lock = field(default_factory=threading.Lock)

    def turn(
        self,
        question: str,
        outlets: list[str] | None,
        conversation: dict[str, list[Any]] | None,
        since: str | None = None,
        until: str | None = None,
    ) -> Iterator[tuple[list[dict[str, Any]], str, str, dict[str, list[Any]]]]:
        """One turn as the page shows it: first the question with a working indicator, then the
        answer (`respond`). API clients get the last of the two."""
        conversation = conversation or _new_conversation()
        if isinstance(question, str) and question.strip():
            waiting = [
                *conversation["messages"],
                {"role": "user", "content": md_literal(question)},
                {"role": "assistant", "content": SEARCHING_TEXT},
            ]
            yield waiting, SEARCHING_PANEL, "", conversation
        yield self.respond(question, outlets, conversation, since, until)

    def respond(
        self,
        question: str,
        outlets: list[str] | None,
        conversation: dict[str, list[Any]] | None,
        since: str | None = None,
        until: str | None = None,
    ) -> tuple[list[dict[str, Any]], str, str, dict[str, list[Any]]]:
        """One turn: (chat messages, sources panel HTML, cleared question box, conversation).
        `since`/`until` (YYYY-MM-DD, empty for open) bound the articles' publication day."""
        conversation = conversation or _new_conversation()
        messages = list(conversation["messages"])
        questions = list(conversation["questions"])
        question = question if isinstance(question, str) else ""
        panel = SOURCES_PLACEHOLDER
        if not question.strip():
            messages.append({"role": "assistant", "content": EMPTY_QUESTION_TEXT})
            return messages, panel, "", {"messages": messages, "questions": questions}
        messages.append({"role": "user", "content": md_literal(question)})
        started = time.perf_counter()
        try:
            retriever = retriever_for(self.index_dir)
            wanted = _outlet_filter(outlets, retriever)
            if wanted == []:
                reply = NO_OUTLET_TEXT
            else:
                answer = ask(
                    question,
                    history=questions,
                    outlets=wanted,
                    index_dir=self.index_dir,
                    since=since if isinstance(since, str) else None,
                    until=until if isinstance(until, str) else None,
                )
                reply = answer.text
                panel = sources_html(answer)
                questions.append(question)
        except RagError as exc:
            reply = f"⚠️ {md_literal(exc)}"
        except Exception as exc:  # one line for the person; the traceback goes to the log
            log.exception("answering %r failed", question)
            reply = f"⚠️ Something went wrong while answering ({md_literal(type(exc).__name__)}); see the server log."
        log.info("answered in %.2fs", time.perf_counter() - started)
        messages.append({"role": "assistant", "content": reply})
        return messages, panel, "", {"messages": messages, "questions": questions}

    def outlet_choices(self) -> Any:
        outlets = list(retriever_for(self.index_dir).outlets)
        return gr.CheckboxGroup(choices=outlets, value=outlets)

    def clear(self) -> tuple[list[dict[str, Any]], str, str, dict[str, list[Any]]]:
        return [], SOURCES_PLACEHOLDER, "", _new_conversation()

    def upload(
        self, files: list[str] | str | None, outlets: list[str] | None, progress: Any = None
    ) -> tuple[str, Any, None]:
        """Add uploaded files: (status HTML, outlet checkboxes, cleared file box)."""
        if isinstance(files, str | Path):
            files = [str(files)]
        files = [str(f) for f in files or [] if f]
        if not files:
            return "<p>Choose .txt, .md, .html or .pdf files to add.</p>", gr.skip(), None
        try:
            before = set(retriever_for(self.index_dir).outlets)
            with self._upload_lock:
                result = add_files(files, self.index_dir, self.uploads_dir, self.max_bytes, progress)
            after = retriever_for(self.index_dir).outlets
        except RagError as exc:
            return UploadResult(error=str(exc)).html(), gr.skip(), None
        except Exception as exc:  # one line for the person; the traceback goes to the log
            log.exception("adding %s failed", files)
            return UploadResult(error=f"adding the files failed ({type(exc).__name__})").html(), gr.skip(), None
        finally:
            _discard_upload_copies(Path(f) for f in files)
        kept = list(after) if outlets is None else [o for o in outlets if o in after]
        ticked = kept + [o for o in after if o not in before and o not in kept]
        return result.html(), gr.CheckboxGroup(choices=list(after), value=ticked), None


def build_app(index_dir: Path, uploads_dir: Path = Path("uploads")) -> gr.Blocks:
    """The chat page for the index in `index_dir`; uploads are saved in `uploads_dir`.

    The model and index are loaded here, once. API names: /ask, /clear, /upload. Serve it with
    `launch`, which adds the page's script and style."""
    index_dir = Path(index_dir)
    page = ChatPage(index_dir=index_dir, uploads_dir=Path(uploads_dir))
    retriever = retriever_for(index_dir)
    outlets = list(retriever.outlets)

    # The events take their inputs as sent (preprocess=False): gradio's own check of the outlets
    # against the choices this page was given would refuse None (all outlets) from an API client
    # and an outlet another page's upload added since; `ask` judges the outlets instead.
    def respond(
        question: Any, outlets: Any, conversation: dict[str, list[Any]], since: Any = None, until: Any = None
    ) -> Iterator[tuple[list[dict[str, Any]], str, str, dict[str, list[Any]]]]:
        yield from page.turn(question, outlets, conversation, since, until)

    def upload(
        files: Any,
        outlets: Any,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008
    ) -> tuple[str, Any, None]:
        return page.upload(_uploaded_paths(files), outlets, progress)

    with gr.Blocks(title="Ask the news", analytics_enabled=False) as app:
        gr.Markdown(
            "## Ask the news\nAnswers are sentences quoted verbatim from the articles, each attributed to its "
            "outlet. Under *Sources* are the passages they come from, quoted sentences highlighted."
        )
        conversation = gr.State(_new_conversation())
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                chatbot = gr.Chatbot(
                    label="Conversation",
                    height=520,
                    autoscroll=False,  # SCROLL_JS shows a new answer from its top, not its end
                    sanitize_html=True,
                    render_markdown=True,
                    latex_delimiters=[],  # "$5 million ... $7" is money, not mathematics
                    allow_tags=False,
                    feedback_options=None,
                    buttons=["copy"],
                    elem_id="rag-chat",
                )
                with gr.Row():
                    question = gr.Textbox(
                        placeholder="Ask about the articles; follow-up questions keep the conversation",
                        show_label=False,
                        scale=5,
                        min_width=160,
                        max_length=2000,
                        elem_id="rag-question",
                        autofocus=True,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=70, elem_id="rag-ask")
                gr.Markdown("Examples:")
                with gr.Row(elem_id="rag-examples"):
                    example_buttons = [gr.Button(text, size="sm", elem_classes=["rag-example"]) for text in EXAMPLES]
                clear = gr.Button("New conversation", size="sm", variant="secondary")
            with gr.Column(scale=2, min_width=300):
                gr.Markdown("### Sources")
                sources = gr.HTML(
                    SOURCES_PLACEHOLDER,
                    elem_id="rag-sources",
                    css_template=SOURCES_CSS,
                    js_on_load=None,
                    max_height=640,
                )
        # Below both columns: on a phone the sources come right after the chat.
        with gr.Accordion("Outlets", open=True):
            outlet_box = gr.CheckboxGroup(choices=outlets, value=outlets, show_label=False, elem_id="rag-outlets")
        with gr.Accordion("Dates", open=False), gr.Row():
            # Plain text, YYYY-MM-DD: a wrong date gets the same one-line message as everywhere.
            since_box = gr.Textbox(label="Published from", placeholder="YYYY-MM-DD", elem_id="rag-since")
            until_box = gr.Textbox(label="Published until", placeholder="YYYY-MM-DD", elem_id="rag-until")
        with gr.Accordion("Add articles", open=False):
            files = gr.File(
                label=f"Add .txt, .md, .html or .pdf articles (up to {page.max_bytes // 1_000_000} MB each)",
                file_count="multiple",
                file_types=sorted(SUFFIXES),
                elem_id="rag-upload",
            )
            upload_status = gr.HTML("", elem_id="rag-upload-status", js_on_load=None)

        turn_inputs = [question, outlet_box, conversation, since_box, until_box]
        turn_outputs = [chatbot, sources, question, conversation]
        as_sent: dict[str, Any] = {"preprocess": False, "show_progress": "minimal"}
        send.click(respond, turn_inputs, turn_outputs, api_name="ask", **as_sent)
        question.submit(respond, turn_inputs, turn_outputs, api_visibility="private", **as_sent)
        for button, text in zip(example_buttons, EXAMPLES, strict=True):
            button.click(lambda t=text: t, None, question, api_visibility="private", queue=False).then(
                respond, turn_inputs, turn_outputs, api_visibility="private", **as_sent
            )
        clear.click(page.clear, None, turn_outputs, api_name="clear")
        chatbot.clear(page.clear, None, turn_outputs, api_visibility="private")  # the chat's own bin icon
        # A page opened after an upload shows the outlets the index has now.
        app.load(page.outlet_choices, None, outlet_box, api_visibility="private", queue=False)
        files.upload(
            upload,
            [files, outlet_box],
            [upload_status, outlet_box, files],
            api_name="upload",
            preprocess=False,
            show_progress="full",
            show_progress_on=[upload_status],
        )
    return app


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, block: bool = True, quiet: bool = False) -> None:
    """Serve `app`; with block=False it returns once the server is up (tests call app.close())."""
    app.queue(default_concurrency_limit=1)
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        prevent_thread_lock=not block,
        show_error=False,
        quiet=quiet,
        max_file_size=DEFAULT_MAX_BYTES,
        ssr_mode=False,
        footer_links=["api"],
        js=SCROLL_JS,
        head=PAGE_HEAD,
    )


def serve(
    index_dir: Path,
    host: str = "127.0.0.1",
    port: int = 7860,
    uploads_dir: Path = Path("uploads"),
    corpus_dir: Path = Path("corpus"),
) -> None:
    """Build the page (loading the model and index) and serve it until interrupted. Without an
    index yet, one is built from `corpus_dir` and the uploads kept in `uploads_dir`."""
    index_dir, uploads_dir, corpus_dir = Path(index_dir), Path(uploads_dir), Path(corpus_dir)
    if not (index_dir / MANIFEST).exists():
        sources = [d for d in (corpus_dir, uploads_dir) if d.is_dir() and any(d.iterdir())]
        if sources:
            print(f"No index in {index_dir} yet; building it from {', '.join(map(str, sources))} ...", flush=True)
            print(build_index(sources, index_dir).summary(), flush=True)
    app = build_app(index_dir, uploads_dir)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: anyone who can reach this address can use the chat and add files", host)
    print(f"Serving the chat at http://{host}:{port}/  (uploads are kept in {uploads_dir})", flush=True)
    print("Ctrl+C to stop", flush=True)
    launch(app, host, port, block=True, quiet=True)
