"""Read source files (.txt, .md, .html/.htm, .pdf) into Documents with their metadata.

A .txt/.md Document's text is the whole file, header block included, so that every offset into it is an
offset into the file as `Path(source).read_text(encoding="utf-8")` returns it (newlines universal, a BOM kept);
`body_start` says where the article starts.

Metadata, most specific first:
  1. a header block of `Key: value` lines at the top of a .txt/.md file, ended by a blank line
     (Title, Source or Outlet, Published-At or Date, URL, Author);
  2. YAML front matter (`---` ... `---`) with the same keys;
  3. what the file format carries (HTML site name, title, author, date; PDF metadata);
  4. a known sign-off in the text ("Register to receive full access to JNS", ...);
  5. the file name, with a warning.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.dates import article_date, html_published_date
from rag.errors import IngestError
from rag.types import Document
from rag.validate import is_text

log = logging.getLogger(__name__)

SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf"})
DEFAULT_MAX_BYTES = 20 * 1024 * 1024

# Header keys and the Document field each one fills.
_HEADER_KEYS = {
    "title": "title",
    "headline": "title",
    "source": "outlet",
    "outlet": "outlet",
    "publisher": "outlet",
    "site": "outlet",
    "site_name": "outlet",
    "sitename": "outlet",
    "published-at": "date",
    "published_at": "date",
    "published": "date",
    "date": "date",
    "url": "url",
    "link": "url",
    "author": "author",
    "authors": "author",
    "byline": "author",
}
_HEADER_LINE = re.compile(r"^([A-Za-z][A-Za-z_-]{1,20}):[ \t]*(.*?)[ \t]*$")

# Sign-offs that name the outlet, as outlets print them.
_SIGN_OFFS: tuple[tuple[re.Pattern[str], str | None], ...] = (
    (re.compile(r"Maariv contributed to this report"), "The Jerusalem Post"),
    (re.compile(r"full access to ([A-Z][\w&.' -]{1,40}?)\.?\s*$", re.MULTILINE), None),
    (re.compile(r"^The ([A-Z][\w&.' -]{1,40}?) Staff is a team of journalists", re.MULTILINE), None),
    (
        re.compile(
            r"\bis (The [A-Z][\w&.' -]{1,40}?)['’]s (?:[\w-]+ ){0,3}"
            r"(?:bureau chief|correspondent|reporter|editor|writer)"
        ),
        None,
    ),
    (re.compile(r"^\((CNN|AP|Reuters|AFP)\)", re.MULTILINE), None),
    (re.compile(r"©\s*\d{4}\s+([A-Z][\w&.' -]{1,40}?)(?:\.|,|$)", re.MULTILINE), None),
)


def read_document(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Document:
    """Read one file. Raises IngestError with a one-line reason when it is not a readable article."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise IngestError(str(path), f"unsupported file type {suffix or '(none)'}; use .txt, .md, .html or .pdf")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            have, limit = _sizes(size, max_bytes)
            raise IngestError(str(path), f"file is {have}, over the {limit} limit")
        if size == 0:
            raise IngestError(str(path), "file is empty")
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(str(path), f"cannot read file ({exc.strerror or exc})") from exc
    if suffix == ".pdf":
        return _read_pdf(path, data)
    text = decode_text(path, data)
    if suffix in (".html", ".htm"):
        return _read_html(path, text.removeprefix("\ufeff"))
    return _read_plain(path, text)


def _sizes(size: int, limit: int) -> tuple[str, str]:
    """Two sizes for a person ("25.3 MB", "21.0 MB"), in bytes when rounding would make them look equal."""

    def text(n: int) -> str:
        for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
            if n >= scale:
                return f"{n / scale:.1f} {unit}"
        return f"{n:,} bytes"

    if text(size) == text(limit):
        return f"{size:,} bytes", f"{limit:,} bytes"
    return text(size), text(limit)


@dataclass(frozen=True)
class SourceFiles:
    """What a walk of the sources found: the files to read, and what it left out and why."""

    files: tuple[Path, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (path, reason): links not followed, unreadable folders


def find_source_files(sources: Iterable[str | Path], roots: Iterable[str | Path] | None = None) -> SourceFiles:
    """Files under the given files/folders with a supported suffix, sorted, hidden ones skipped.

    A symbolic link inside a folder (to a file or a folder) is followed only when its target is
    inside one of `roots` (default: `sources`) and not hidden there: a folder someone else wrote
    (an unpacked archive, a shared drive) cannot pull in this machine's other files. Links that
    point elsewhere, broken links and links that would loop are skipped, each with its reason.
    A source named explicitly is read even when it is itself a link: the caller chose it.
    Raises IngestError for a source that does not exist."""
    sources = list(sources)
    real_roots = tuple(os.path.realpath(r) for r in (sources if roots is None else roots))
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for source in sources:
        root = Path(source)
        if root.is_dir():
            found: list[Path] = []
            _walk(root, real_roots, found, skipped)
            files.extend(sorted(found))
        elif root.exists():
            files.append(root)
        else:
            raise IngestError(str(root), "no such file or folder")
    return SourceFiles(tuple(files), tuple(skipped))


def iter_source_files(sources: Iterable[str | Path]) -> Iterator[Path]:
    """The files find_source_files finds (links it skips are dropped without a report)."""
    yield from find_source_files(sources).files


def _walk(root: Path, real_roots: tuple[str, ...], files: list[Path], skipped: list[tuple[str, str]]) -> None:
    """Depth first without recursion: a hostile tree may be thousands of folders deep."""
    stack: list[tuple[Path, str]] = [(root, os.path.realpath(root))]  # (folder as named, its real path)
    followed: dict[str, Path] = {}  # real folder -> the link it was first entered through
    while stack:
        folder, real_folder = stack.pop()
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            skipped.append((str(folder), f"cannot read folder ({exc.strerror or exc}); skipped"))
            continue
        subfolders: list[tuple[Path, str]] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = folder / entry.name
            if not is_text(entry.name):  # the index keeps names as UTF-8 text
                if path.suffix.lower() in SUFFIXES or entry.is_dir():
                    skipped.append((str(path), "name is not UTF-8 text; rename it to index it"))
                continue
            try:
                if entry.is_symlink():
                    target = _link_target(path, real_roots, real_folder, followed)
                    if isinstance(target, _Skip):
                        skipped.append((str(path), target.reason))
                    elif os.path.isdir(target):
                        followed[target] = path
                        subfolders.append((path, target))
                    elif os.path.isfile(target) and path.suffix.lower() in SUFFIXES:
                        files.append(path)
                elif entry.is_dir(follow_symlinks=False):
                    subfolders.append((path, os.path.join(real_folder, entry.name)))
                elif entry.is_file(follow_symlinks=False) and path.suffix.lower() in SUFFIXES:
                    files.append(path)
            except OSError as exc:  # a name too long, an entry removed while we look...
                skipped.append((str(path), f"cannot read ({exc.strerror or exc}); skipped"))
        stack.extend(reversed(subfolders))


@dataclass(frozen=True)
class _Skip:
    reason: str


def _link_target(link: Path, real_roots: tuple[str, ...], real_folder: str, followed: dict[str, Path]) -> str | _Skip:
    """The real path a link in `real_folder` leads to, or why it is not followed. `followed`:
    the folders already entered through a link."""
    try:
        target = os.path.realpath(link, strict=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return _Skip("symbolic link loop; not followed")
        return _Skip(f"broken symbolic link (to {_readlink(link)}); skipped")
    except RuntimeError:  # a loop, on Pythons that raise it as RuntimeError
        return _Skip("symbolic link loop; not followed")
    for root in real_roots:
        if _contains(root, target):
            inside = os.path.relpath(target, root)
            if any(part.startswith(".") for part in Path(inside).parts):
                return _Skip(f"symbolic link to {target}, a hidden file or folder; not followed")
            if os.path.isdir(target) and _contains(target, real_folder):
                return _Skip("symbolic link to a folder that contains it (a loop); not followed")
            if target in followed:
                return _Skip(f"symbolic link to a folder already read as {followed[target]}")
            return target
    return _Skip(f"symbolic link to {target}, outside the files and folders being indexed; not followed")


def _contains(outer: str, inner: str) -> bool:
    """Whether real path `inner` is `outer` or inside it."""
    return os.path.commonpath([outer, inner]) == outer


def _readlink(link: Path) -> str:
    try:
        return os.readlink(link)
    except OSError:
        return "?"


def decode_text(path: Path, data: bytes) -> str:
    """Bytes to text: UTF-8 (with or without BOM), UTF-16 by BOM, else Windows-1252/Latin-1.

    UTF-8 comes back as `Path.read_text(encoding="utf-8")` gives it: "\r\n" and "\r" read as "\n", a BOM
    kept as U+FEFF, so that offsets into it are offsets into that. Refuses binary data, which would index
    as noise."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16", errors="replace")
    elif b"\x00" in data[:4096] and _looks_utf16(data):
        text = data.decode("utf-16-le" if data[1:2] == b"\x00" else "utf-16-be", errors="replace")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _is_binary(text):
        raise IngestError(str(path), "not a text file (binary content)")
    if not text.removeprefix("\ufeff").strip():
        raise IngestError(str(path), "file has no text")
    return text


def _looks_utf16(data: bytes) -> bool:
    sample = data[:4096]
    zeros_odd = sample[1::2].count(0)
    zeros_even = sample[0::2].count(0)
    return max(zeros_odd, zeros_even) > 0.4 * (len(sample) / 2)


def _is_binary(text: str) -> bool:
    sample = text[:8192]
    if not sample:
        return False
    bad = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\n\t\f\v") or ch == "\ufffd")
    return "\x00" in sample or bad / len(sample) > 0.05


def parse_header(text: str) -> tuple[dict[str, str], int]:
    """Metadata from a `Key: value` header block or YAML front matter, and where the body starts."""
    if text.startswith("---\n"):
        close = text.find("\n---", 4)
        if close != -1:
            end_of_line = text.find("\n", close + 4)
            body_start = len(text) if end_of_line == -1 else end_of_line + 1
            front = _yaml_meta(text[4:close])
            if front is not None:
                return front, _skip_blank_lines(text, body_start)
    meta: dict[str, str] = {}
    offset = 0
    while offset < len(text):
        newline = text.find("\n", offset)
        line_end = len(text) if newline == -1 else newline
        line = text[offset:line_end]
        if not line.strip():
            if meta:
                return meta, _skip_blank_lines(text, line_end)
            return {}, 0
        match = _HEADER_LINE.match(line)
        if not match or match.group(1).lower() not in _HEADER_KEYS:
            return {}, 0  # the first lines are article text, not a header
        field = _HEADER_KEYS[match.group(1).lower()]
        meta.setdefault(field, match.group(2))
        offset = line_end + 1
    return {}, 0  # a file of header lines only has no body: treat it all as text


def _skip_blank_lines(text: str, offset: int) -> int:
    while offset < len(text) and text[offset] in "\n \t":
        offset += 1
    return offset


def _yaml_meta(block: str) -> dict[str, str] | None:
    import yaml

    try:
        data = yaml.safe_load(block)
    except (yaml.YAMLError, ValueError, TypeError, AttributeError, RecursionError):
        # Not front matter we can read ("date: 2024-02-30", deep nesting...): the block stays text.
        return None
    if not isinstance(data, dict):
        return None
    meta: dict[str, str] = {}
    for key, value in data.items():
        field = _HEADER_KEYS.get(str(key).lower())
        if field and value is not None and field not in meta:
            if isinstance(value, list):
                value = ", ".join(str(v) for v in value)
            meta[field] = str(value).strip()
    return meta


def infer_outlet(text: str) -> str | None:
    """The outlet named by a known sign-off in the text, if any."""
    for pattern, outlet in _SIGN_OFFS:
        match = pattern.search(text)
        if match:
            return outlet or match.group(1).strip()
    return None


def content_hash(text: str, title: str, outlet: str) -> str:
    digest = hashlib.sha256()
    for part in (title, outlet, text):
        digest.update(part.encode("utf-8", errors="surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()[:20]


def _finish(
    path: Path,
    text: str,
    meta: dict[str, str],
    pages: tuple[tuple[int, int], ...] = (),
    body_start: int = 0,
) -> Document:
    body = text[body_start:]
    if not body.strip():
        raise IngestError(str(path), "no article text found")
    warnings: list[str] = []
    outlet = (meta.get("outlet") or "").strip() or infer_outlet(body)
    if not outlet:
        outlet = path.stem
        warnings.append(f"{path}: no outlet declared or recognised; using the file name {outlet!r}")
        # Info, not warning: the warning travels in Document.warnings and the build report prints it.
        log.info(warnings[-1])
    title = (meta.get("title") or "").strip() or _first_line(body)
    return Document(
        # Of the article, not the header: an edited Date line does not make a new article.
        doc_id=content_hash(body, title, outlet),
        source=str(path),
        text=text,
        outlet=outlet,
        title=title,
        author=(meta.get("author") or "").strip(),
        date=article_date(meta.get("date", ""), meta.get("url", ""), text),
        url=(meta.get("url") or "").strip(),
        pages=pages,
        warnings=tuple(warnings),
        body_start=body_start,
    )


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def _read_plain(path: Path, text: str) -> Document:
    bom = 1 if text.startswith("\ufeff") else 0
    meta, body_start = parse_header(text[bom:])
    return _finish(path, text, meta, body_start=bom + body_start)


def _read_html(path: Path, html: str) -> Document:
    import trafilatura

    try:
        result = trafilatura.bare_extraction(
            html, with_metadata=True, include_comments=False, favor_recall=True, as_dict=True
        )
    except Exception as exc:  # trafilatura raises many kinds on broken markup
        raise IngestError(str(path), f"cannot parse HTML ({type(exc).__name__})") from exc
    data: dict[str, Any] = result if isinstance(result, dict) else {}
    text = (data.get("text") or "").strip()
    if not text:
        raise IngestError(str(path), "no article text found in the HTML page")
    if _is_link_text(html, text):
        raise IngestError(str(path), "no article text found in the HTML page (only navigation links)")
    meta = {
        "title": data.get("title") or "",
        "outlet": data.get("sitename") or "",
        "author": data.get("author") or "",
        "date": html_published_date(html),  # not trafilatura's guess: the URL and a dateline come first
        "url": data.get("url") or "",
    }
    return _finish(path, text, {k: str(v) for k, v in meta.items() if v})


def _is_link_text(html: str, text: str) -> bool:
    """True when the extracted text is (nearly) all link labels: a page of menus, not an article.

    trafilatura falls back to whatever text a page has, and on a page without an article that is
    its navigation."""
    from lxml import etree
    from lxml import html as lxml_html

    try:
        tree = lxml_html.fromstring(re.sub(r"^\s*<\?xml[^>]*>", "", html))  # lxml refuses str with a declaration
    except (etree.LxmlError, ValueError):
        return False
    labels = {" ".join(a.text_content().split()) for a in tree.iter("a")}
    rest = " ".join(text.split())
    for label in sorted((x for x in labels if len(x) > 1 and x in rest), key=len, reverse=True):
        rest = re.sub(rf"(?<!\w){re.escape(label)}(?!\w)", " ", rest)
    words = len(re.findall(r"\w+", text))
    return len(re.findall(r"\w+", rest)) < 0.2 * words


def _unreadable_pdf(data: bytes) -> str:
    """Why a PDF could not be read, in words a person can act on (not pypdf's exception name)."""
    if b"%PDF-" not in data[:1024]:
        return "cannot read PDF: the file is not a PDF (perhaps another kind of file renamed to .pdf)"
    return "cannot read PDF: the file is damaged or incomplete; open it in a PDF viewer and save or export it again"


def _read_pdf(path: Path, data: bytes) -> Document:
    import io

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except Exception as exc:
                raise IngestError(str(path), "PDF is encrypted; save an unencrypted copy") from exc
            if not opened:
                raise IngestError(str(path), "PDF is encrypted; save an unencrypted copy")
        parts: list[str] = []
        pages: list[tuple[int, int]] = []
        offset = 0
        for number, page in enumerate(reader.pages, start=1):
            page_text = (page.extract_text() or "").replace("\r\n", "\n").replace("\r", "\n").strip()
            if not page_text:
                continue
            if parts:
                parts.append("\n\n")
                offset += 2
            pages.append((offset, number))
            parts.append(page_text)
            offset += len(page_text)
        info: Any = reader.metadata or {}
    except IngestError:
        raise
    except Exception as exc:  # pypdf surfaces many internal errors on corrupt files
        raise IngestError(str(path), _unreadable_pdf(data)) from exc
    text = "".join(parts)
    if not text.strip():
        raise IngestError(str(path), "PDF has no text layer (a scan?); run OCR on it first")
    if _is_binary(text):
        raise IngestError(str(path), "PDF text layer is unreadable")
    meta: dict[str, str] = {}
    for key, field in (("/Title", "title"), ("/Author", "author"), ("/CreationDate", "date")):
        value = info.get(key) if hasattr(info, "get") else None
        if value:
            meta[field] = str(value)
    for key in ("/Outlet", "/Source", "/Publisher", "/Company"):
        value = info.get(key) if hasattr(info, "get") else None
        if value:
            meta["outlet"] = str(value)
            break
    if "date" in meta:
        match = re.match(r"D:(\d{4})(\d{2})(\d{2})", meta["date"])
        meta["date"] = "-".join(match.groups()) if match else meta["date"]
    # A header block on the first page wins over PDF metadata, as in a text file.
    header, body_start = parse_header(text)
    meta.update(header)
    return _finish(path, text, meta, tuple(pages), body_start=body_start if header else 0)
