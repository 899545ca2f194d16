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
import logging
import re
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from rag.answer import md_literal
from rag.api import ask, retriever_for
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
        meta.append(f'<span class="rag-date">{escape(passage.date)}</span>')
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


def sources_html(answer: Answer | None) -> str:
    """The sources panel for an answer: each passage with its outlet, headline, date and file,
    the quoted sentences marked; passages quoted from first."""
    if answer is None or not answer.passages:
        return SOURCES_PLACEHOLDER
    passages = sorted(answer.passages, key=lambda p: not quote_spans(p, answer.quotes))
    if answer.abstained:
        note = "None of these passages answers the question; they are the closest ones found."
    else:
        used = sum(1 for p in passages if quote_spans(p, answer.quotes))
        note = f"{used} of {len(passages)} passages quoted; quoted sentences are highlighted."
    body = "".join(passage_html(p, answer.quotes) for p in passages)
    return f'<div class="rag-sources"><p class="rag-note">{escape(note)}</p>{body}</div>'


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
    sources_dir: Path,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Any = None,
) -> UploadResult:
    """Check, save and index uploaded files. A rejected file is not left in `sources_dir`, and the
    index is only replaced when something was added (build_index commits atomically)."""
    result = UploadResult()
    retriever = retriever_for(index_dir)
    known = {d.doc_id: d.source for d in retriever.stored.documents.values()}
    written: list[tuple[Path, str]] = []  # (saved path, name shown)

    def step(fraction: float, desc: str) -> None:
        if progress is not None:
            progress(fraction, desc=desc)

    sources_dir.mkdir(parents=True, exist_ok=True)
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
            destination, same = unique_destination(sources_dir, name, data)
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
        if not sources:
            sources = [str(sources_dir)]
        for path, _ in written:
            if not _covered(path, sources):
                sources.append(str(path))
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


def _new_conversation() -> dict[str, list[Any]]:
    return {"messages": [], "questions": []}


def _outlet_filter(selected: Sequence[str] | None, retriever: Retriever) -> list[str] | None:
    """None (all outlets) when every known outlet is ticked, else the ticked ones."""
    chosen = [o for o in (selected or []) if isinstance(o, str) and o.strip()]
    if set(retriever.outlets) <= set(chosen):
        return None
    return chosen


@dataclass
class ChatPage:
    index_dir: Path
    sources_dir: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    _upload_lock: threading.Lock = field(default_factory=threading.Lock)

    def respond(
        self, question: str, outlets: list[str] | None, conversation: dict[str, list[Any]] | None
    ) -> tuple[list[dict[str, Any]], str, str, dict[str, list[Any]]]:
        """One turn: (chat messages, sources panel HTML, cleared question box, conversation)."""
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
                answer = ask(question, history=questions, outlets=wanted, index_dir=self.index_dir)
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
                result = add_files(files, self.index_dir, self.sources_dir, self.max_bytes, progress)
            after = retriever_for(self.index_dir).outlets
        except RagError as exc:
            return UploadResult(error=str(exc)).html(), gr.skip(), None
        except Exception as exc:  # one line for the person; the traceback goes to the log
            log.exception("adding %s failed", files)
            return UploadResult(error=f"adding the files failed ({type(exc).__name__})").html(), gr.skip(), None
        ticked = [o for o in (outlets or []) if o in after] + [o for o in after if o not in before]
        return result.html(), gr.CheckboxGroup(choices=list(after), value=ticked), None


def build_app(index_dir: Path, sources_dir: Path = Path("corpus")) -> gr.Blocks:
    """The chat page for the index in `index_dir`; uploads are saved in `sources_dir`.

    The model and index are loaded here, once. API names: /ask, /clear, /upload."""
    index_dir = Path(index_dir)
    page = ChatPage(index_dir=index_dir, sources_dir=Path(sources_dir))
    retriever = retriever_for(index_dir)
    outlets = list(retriever.outlets)

    def respond(
        question: str, outlets: list[str], conversation: dict[str, list[Any]]
    ) -> tuple[list[dict[str, Any]], str, str, dict[str, list[Any]]]:
        return page.respond(question, outlets, conversation)

    def upload(
        files: list[str] | None,
        outlets: list[str],
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008
    ) -> tuple[str, Any, None]:
        return page.upload(files, outlets, progress)

    with gr.Blocks(title="Ask the news", analytics_enabled=False) as app:
        gr.Markdown(
            "## Ask the news\nAnswers are sentences quoted verbatim from the articles, each attributed to its "
            "outlet. The passages they come from are on the right, quoted sentences highlighted."
        )
        conversation = gr.State(_new_conversation())
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=360):
                chatbot = gr.Chatbot(
                    label="Conversation",
                    height=520,
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
                        max_length=2000,
                        elem_id="rag-question",
                        autofocus=True,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="rag-ask")
                gr.Markdown("Examples:")
                with gr.Row():
                    example_buttons = [gr.Button(text, size="sm", elem_classes=["rag-example"]) for text in EXAMPLES]
                clear = gr.Button("New conversation", size="sm", variant="secondary")
                with gr.Accordion("Outlets", open=True):
                    outlet_box = gr.CheckboxGroup(
                        choices=outlets, value=outlets, show_label=False, elem_id="rag-outlets"
                    )
                with gr.Accordion("Add articles", open=False):
                    files = gr.File(
                        label=f"Add .txt, .md, .html or .pdf articles (up to {page.max_bytes // 1_000_000} MB each)",
                        file_count="multiple",
                        file_types=sorted(SUFFIXES),
                        elem_id="rag-upload",
                    )
                    upload_status = gr.HTML("", elem_id="rag-upload-status", js_on_load=None)
            with gr.Column(scale=2, min_width=320):
                gr.Markdown("### Sources")
                sources = gr.HTML(
                    SOURCES_PLACEHOLDER,
                    elem_id="rag-sources",
                    css_template=SOURCES_CSS,
                    js_on_load=None,
                    max_height=640,
                )

        turn_outputs = [chatbot, sources, question, conversation]
        send.click(respond, [question, outlet_box, conversation], turn_outputs, api_name="ask", show_progress="minimal")
        question.submit(
            respond,
            [question, outlet_box, conversation],
            turn_outputs,
            api_visibility="private",
            show_progress="minimal",
        )
        for button, text in zip(example_buttons, EXAMPLES, strict=True):
            button.click(lambda t=text: t, None, question, api_visibility="private", queue=False).then(
                respond, [question, outlet_box, conversation], turn_outputs, api_visibility="private"
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
    )


def serve(index_dir: Path, host: str = "127.0.0.1", port: int = 7860, sources_dir: Path = Path("corpus")) -> None:
    """Build the page (loading the model and index) and serve it until interrupted."""
    index_dir, sources_dir = Path(index_dir), Path(sources_dir)
    if not (index_dir / MANIFEST).exists() and sources_dir.is_dir():
        print(f"No index in {index_dir} yet; building it from {sources_dir} ...", flush=True)
        print(build_index([sources_dir], index_dir).summary(), flush=True)
    app = build_app(index_dir, sources_dir)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: anyone who can reach this address can use the chat and add files", host)
    print(f"Serving the chat at http://{host}:{port}/  (Ctrl+C to stop)", flush=True)
    launch(app, host, port, block=True, quiet=True)
