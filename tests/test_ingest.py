"""rag.ingest: metadata headers, outlet inference, HTML and PDF, and every way a file can be unreadable."""

from __future__ import annotations

import builtins
import codecs
import io
import logging
import pathlib
import random
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from rag.errors import IngestError
from rag.ingest import decode_text, find_source_files, infer_outlet, iter_source_files, parse_header, read_document

SEEDS = Path(__file__).parent / "data" / "seeds"

SEED_OUTLETS = {
    "000_7d35695503e2d372.txt": "JNS",
    "001_d7804dc54d9443d6.txt": "The Times of Israel",
    "002_99735604145fecb3.txt": "All Israel News",
    "003_ce02a99fd4690d2e.txt": "The Times of Israel",
    "004_70201ae4656567ec.txt": "The Jerusalem Post",
}

BODY = (
    "The United States and Israel agreed during a virtual meeting on Monday that Hamas must be defeated "
    "in Gaza's Rafah city, according to a White House statement.\n\n"
    "Also present for the meeting were experts and senior officials from both countries.\n"
)


# --- helpers -----------------------------------------------------------------------------------


def _pdf_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[list[str] | bytes], info: dict[str, str] | None = None) -> bytes:
    """A minimal, valid PDF. A page is a list of text lines (Helvetica, a real text layer)
    or raw content-stream bytes (e.g. vector graphics only, no text)."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for i, page in enumerate(pages):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        if isinstance(page, bytes):
            stream = page
        else:
            ops = ["BT", "/F1 11 Tf", "14 TL", "72 740 Td"]
            ops += [f"({_pdf_string(line)}) Tj T*" for line in page]
            ops.append("ET")
            stream = "\n".join(ops).encode("cp1252")
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info_ref = b""
    if info:
        objects.append(("<< " + " ".join(f"/{k} ({_pdf_string(v)})" for k, v in info.items()) + " >>").encode())
        info_ref = b" /Info %d 0 R" % len(objects)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R" % (len(objects) + 1) + info_ref + b" >>\n"
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def encrypt_pdf(data: bytes, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def ingest_error(path: Path, **kwargs: int) -> IngestError:
    """The IngestError that reading `path` raises, checked to be one line that names the file."""
    with pytest.raises(IngestError) as info:
        read_document(path, **kwargs)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    assert info.value.path == str(path)
    assert len(info.value.reason) > 5
    return info.value


# --- header block and front matter -------------------------------------------------------------


def test_header_block_fills_metadata_and_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "article.txt"
    path.write_text(
        "Title: US, Israel share objective of defeating Hamas in Rafah\n"
        "Source: JNS\n"
        "Published-At: 2024-04-01\n"
        "URL: https://www.jns.org/us-israel-share-objective/\n"
        "Author: JNS Staff\n"
        "\n" + BODY,
        encoding="utf-8",
    )
    doc = read_document(path)
    assert doc.title == "US, Israel share objective of defeating Hamas in Rafah"
    assert doc.outlet == "JNS"
    assert doc.date == "2024-04-01"
    assert doc.url == "https://www.jns.org/us-israel-share-objective/"
    assert doc.author == "JNS Staff"
    assert doc.body == BODY
    assert doc.text == path.read_text(encoding="utf-8")  # offsets are the file's
    assert doc.warnings == ()
    assert doc.source == str(path)


@pytest.mark.parametrize(
    ("header", "field", "value"),
    [
        ("Outlet: The Times of Israel", "outlet", "The Times of Israel"),
        ("outlet:   The Times of Israel  ", "outlet", "The Times of Israel"),
        ("Date: 2024-04-02", "date", "2024-04-02"),
        ("Published-At: 2024-04-02T10:00:00Z", "date", "2024-04-02"),  # day precision: rag.dates
        ("Author: Jacob Magid", "author", "Jacob Magid"),
    ],
)
def test_header_key_variants(tmp_path: Path, header: str, field: str, value: str) -> None:
    path = tmp_path / "a.txt"
    path.write_text(f"Title: Headline\n{header}\n\n{BODY}", encoding="utf-8")
    doc = read_document(path)
    assert getattr(doc, field) == value
    assert doc.body == BODY


def test_yaml_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "article.md"
    path.write_text(
        "---\n"
        "title: 'Rafah op will harm your security, US tells Israeli officials'\n"
        "outlet: The Jerusalem Post\n"
        "date: 2024-04-01\n"
        "authors: [Jane Roe, John Doe]\n"
        "url: https://www.jpost.com/x\n"
        "---\n\n" + BODY,
        encoding="utf-8",
    )
    doc = read_document(path)
    assert doc.title == "Rafah op will harm your security, US tells Israeli officials"
    assert doc.outlet == "The Jerusalem Post"
    assert doc.date == "2024-04-01"  # YAML reads it as a date; kept as ISO text
    assert doc.author == "Jane Roe, John Doe"
    assert doc.url == "https://www.jpost.com/x"
    assert doc.body == BODY
    assert doc.text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("front", ["date: 2024-02-30", "title: " + "[" * 5000, "- " * 3000 + "x", "a: !!float abc"])
def test_unreadable_front_matter_stays_text(tmp_path: Path, front: str) -> None:
    path = tmp_path / "odd.md"
    content = f"---\n{front}\n---\n\n{BODY}"
    path.write_text(content, encoding="utf-8")
    doc = read_document(path)
    assert doc.text == doc.body == content


def test_article_starting_with_a_colon_line_is_not_a_header() -> None:
    text = "Washington: the talks went on for two hours.\n\nMore text.\n"
    assert parse_header(text) == ({}, 0)
    # A key we know, followed by prose instead of a blank line, is not a header either.
    text = "Title: Headline\nThe talks went on for two hours.\n"
    assert parse_header(text) == ({}, 0)


def test_header_without_body_is_text() -> None:
    assert parse_header("Title: Only a header\nSource: JNS") == ({}, 0)


def test_declared_outlet_wins_over_sign_off(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("Outlet: Custom Wire\n\n" + BODY + "Register to receive full access to JNS.\n", encoding="utf-8")
    assert read_document(path).outlet == "Custom Wire"


# --- outlet inference from sign-offs, fallback to the file name --------------------------------


@pytest.mark.parametrize("name", sorted(SEED_OUTLETS))
def test_outlet_inferred_from_seed_sign_off(tmp_path: Path, name: str) -> None:
    path = tmp_path / "article.txt"  # a neutral name: the outlet must come from the text
    path.write_bytes((SEEDS / name).read_bytes())
    doc = read_document(path)
    assert doc.outlet == SEED_OUTLETS[name]
    assert doc.warnings == ()
    assert doc.text == doc.body == (SEEDS / name).read_text(encoding="utf-8")  # no header: all is text
    assert doc.title  # first line of the file


def test_infer_outlet_patterns() -> None:
    assert infer_outlet("Body.\nMaariv contributed to this report.\n") == "The Jerusalem Post"
    assert infer_outlet("Body.\nRegister to receive full access to JNS.\n") == "JNS"
    assert infer_outlet("The All Israel News Staff is a team of journalists in Israel.") == "All Israel News"
    assert infer_outlet("Jacob Magid is The Times of Israel's US bureau chief") == "The Times of Israel"
    assert infer_outlet("An article about the times of Israel's history.") is None
    assert infer_outlet("Nothing to see here.") is None


def test_outlet_falls_back_to_file_name_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "rafah-briefing.txt"
    path.write_text(BODY, encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="rag.ingest"):
        doc = read_document(path)
    assert doc.outlet == "rafah-briefing"
    assert len(doc.warnings) == 1
    assert str(path) in doc.warnings[0]
    assert "rafah-briefing" in doc.warnings[0]
    # Logged for -v only: the warning travels in the Document, and `rag index` prints it once from the report.
    assert [r.levelno for r in caplog.records if str(path) in r.getMessage()] == [logging.INFO]


def test_same_content_same_doc_id_other_content_other_id(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.txt", tmp_path / "sub" / "b.txt", tmp_path / "c.txt"
    b.parent.mkdir()
    a.write_text("Outlet: JNS\n\n" + BODY, encoding="utf-8")
    b.write_text("Outlet: JNS\n\n" + BODY, encoding="utf-8")
    c.write_text("Outlet: JNS\n\n" + BODY + "One more line.\n", encoding="utf-8")
    assert read_document(a).doc_id == read_document(b).doc_id
    assert read_document(a).doc_id != read_document(c).doc_id


# --- HTML --------------------------------------------------------------------------------------

NEWS_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Rafah op will harm your security, US tells Israeli officials | The Jerusalem Post</title>
<meta property="og:site_name" content="The Jerusalem Post">
<meta property="og:title" content="Rafah op will harm your security, US tells Israeli officials">
<meta name="author" content="Jerusalem Post Staff">
<meta property="article:published_time" content="2024-04-01T21:14:00+00:00">
<link rel="canonical" href="https://www.jpost.com/israel-news/article-794812">
<script>window.dataLayer = [{"page": "article", "tracker": "SECRET_TRACKER"}];</script>
<style>.main-nav { color: red }</style>
</head><body>
<header><a class="logo" href="/">Home page</a>
<nav class="main-nav"><ul>
<li><a href="/israel-news">Israel News</a></li><li><a href="/middle-east">Middle East</a></li>
<li><a href="/opinion">Opinion</a></li><li><a href="/business">Business and Innovation</a></li>
<li><a href="/subscribe">Subscribe to our premium membership today</a></li>
</ul></nav></header>
<main><article>
<h1>Rafah op will harm your security, US tells Israeli officials</h1>
<p>Israel's security will be harmed by a military operation in Rafah that would further isolate it on the
international stage, the Biden administration told its counterparts in Jerusalem during a virtual
conversation on Monday.</p>
<p>At issue for the US and the international community has been the over 1.3 million civilians in Rafah,
many of whom fled there to escape bombing in the north at the start of the war.</p>
<p>The State Department said it can't independently confirm the number of Hamas fighters or civilians
killed during the Shifa operation.</p>
</article></main>
<footer><nav><a href="/about">About us</a> | <a href="/contact">Contact us</a> |
<a href="/privacy">Privacy policy</a> | <a href="/terms">Terms of use</a></nav>
<p>Copyright 2024 Palestine Post Ltd. All rights reserved.</p></footer>
</body></html>
"""


def test_html_article_extracted_without_navigation(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(NEWS_PAGE, encoding="utf-8")
    doc = read_document(path)
    text = " ".join(doc.text.split())
    assert "1.3 million civilians in Rafah" in text
    assert "isolate it on the international stage" in text
    assert "killed during the Shifa operation" in text
    for junk in ("Subscribe to our premium", "Business and Innovation", "Privacy policy", "SECRET_TRACKER", "color"):
        assert junk not in doc.text
    assert doc.outlet == "The Jerusalem Post"  # og:site_name
    assert doc.title == "Rafah op will harm your security, US tells Israeli officials"
    assert doc.date == "2024-04-01"
    assert doc.url == "https://www.jpost.com/israel-news/article-794812"
    assert doc.warnings == ()


def test_html_article_with_inline_links_is_not_taken_for_navigation(tmp_path: Path) -> None:
    page = NEWS_PAGE.replace(
        "the Biden administration told",
        'the <a href="/biden">Biden administration</a> told',
    ).replace("the Shifa operation", 'the <a href="/shifa">Shifa operation</a> at <a href="/gaza">Gaza City</a>')
    path = tmp_path / "linked.html"
    path.write_text(page, encoding="utf-8")
    text = " ".join(read_document(path).text.split())
    assert "the Biden administration told its counterparts" in text
    assert "the Shifa operation at Gaza City" in text


def test_html_all_navigation_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "menu.html"
    links = "".join(f'<li><a href="/section/{i}">Section {i}</a></li>' for i in range(25))
    path.write_text(
        "<!DOCTYPE html><html><head><title>Sections</title>"
        '<meta property="og:site_name" content="The Jerusalem Post"></head><body>'
        f'<header><a href="/">The Jerusalem Post</a><nav><ul>{links}</ul></nav></header>'
        '<aside><a href="/a">Rafah talks</a> <a href="/b">Hostage deal</a></aside>'
        '<footer><a href="/about">About us</a> | <a href="/privacy">Privacy policy</a></footer>'
        "</body></html>",
        encoding="utf-8",
    )
    error = ingest_error(path)
    assert "no article text" in error.reason
    # The same page as XHTML with an XML declaration.
    xhtml = tmp_path / "menu.htm"
    xhtml.write_text('<?xml version="1.0" encoding="utf-8"?>\n' + path.read_text(encoding="utf-8"), encoding="utf-8")
    assert "no article text" in ingest_error(xhtml).reason


def test_html_without_any_text_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.html"
    path.write_text("<html><head><title></title></head><body><div></div></body></html>", encoding="utf-8")
    assert "no article text" in ingest_error(path).reason


# --- PDF ---------------------------------------------------------------------------------------


def test_pdf_text_metadata_and_page_numbers(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(
        make_pdf(
            [
                ["Top officials held a virtual meeting on Monday.", "The US side raised concerns."],
                [],  # an empty page: numbering must not shift
                ["Many of the 134 hostages are believed to be in Rafah."],
            ],
            info={"Title": "Rafah talks", "Author": "Jane Roe", "Outlet": "JNS", "CreationDate": "D:20240401120000Z"},
        )
    )
    doc = read_document(path)
    assert "Top officials held a virtual meeting on Monday." in doc.text
    assert "The US side raised concerns." in doc.text
    third = doc.text.index("Many of the 134 hostages")
    assert doc.pages == ((0, 1), (third, 3))
    assert doc.page_at(0) == 1
    assert doc.page_at(doc.text.index("The US side")) == 1
    assert doc.page_at(third) == 3
    assert doc.page_at(len(doc.text) - 1) == 3
    assert (doc.title, doc.author, doc.outlet, doc.date) == ("Rafah talks", "Jane Roe", "JNS", "2024-04-01")


def test_pdf_without_metadata_infers_outlet_from_text(tmp_path: Path) -> None:
    path = tmp_path / "x.pdf"
    path.write_bytes(make_pdf([["Body of the report.", "Maariv contributed to this report."]]))
    doc = read_document(path)
    assert doc.outlet == "The Jerusalem Post"
    assert doc.title == "Body of the report."


def test_pdf_encrypted_with_password_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "locked.pdf"
    path.write_bytes(encrypt_pdf(make_pdf([["Secret text of the article."]]), user_password="secret"))
    assert "encrypted" in ingest_error(path).reason


def test_pdf_encrypted_with_empty_user_password_is_read(tmp_path: Path) -> None:
    path = tmp_path / "owner-only.pdf"
    path.write_bytes(encrypt_pdf(make_pdf([["Readable text of the article."]], {"Outlet": "JNS"}), user_password=""))
    assert "Readable text of the article." in read_document(path).text


def test_pdf_without_text_layer_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    # Vector graphics only: what a scan looks like to a text extractor.
    path.write_bytes(make_pdf([b"0.5 g 72 72 468 648 re f", b"0 0 1 rg 100 100 50 50 re f"]))
    error = ingest_error(path)
    assert "no text layer" in error.reason


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8])
def test_pdf_truncated_is_rejected(tmp_path: Path, fraction: float) -> None:
    data = make_pdf([["Top officials held a virtual meeting on Monday."]])
    path = tmp_path / "cut.pdf"
    path.write_bytes(data[: int(len(data) * fraction)])
    assert "cannot read PDF" in ingest_error(path).reason


def test_pdf_garbage_after_magic_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "junk.pdf"
    path.write_bytes(b"%PDF-1.7\n" + random.Random(7).randbytes(3000))
    assert ingest_error(path).reason


# --- encodings and bad input -------------------------------------------------------------------

ACCENTED = "Café Müller, São Paulo and Zürich: naïve façade, 50 ° and £3.\nSecond line.\n"


def test_latin1_text_decodes(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes(("Outlet: Le Monde\n\n" + ACCENTED).encode("latin-1"))
    doc = read_document(path)
    assert doc.body == ACCENTED
    assert doc.text == "Outlet: Le Monde\n\n" + ACCENTED  # not UTF-8: offsets index the decoded text
    assert doc.outlet == "Le Monde"


def test_windows_1252_quotes_decode(tmp_path: Path) -> None:
    path = tmp_path / "cp.txt"
    text = "Outlet: JNS\n\n\u201cWe know,\u201d she said \u2014 it\u2019s done.\n"
    path.write_bytes(text.encode("cp1252"))
    assert read_document(path).body == "\u201cWe know,\u201d she said \u2014 it\u2019s done.\n"


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: codecs.BOM_UTF16_LE + s.encode("utf-16-le"),
        lambda s: codecs.BOM_UTF16_BE + s.encode("utf-16-be"),
        lambda s: s.encode("utf-16-le"),  # no BOM
        lambda s: s.encode("utf-16-be"),  # no BOM
        lambda s: codecs.BOM_UTF8 + s.encode("utf-8"),
    ],
    ids=["utf16-le-bom", "utf16-be-bom", "utf16-le", "utf16-be", "utf8-bom"],
)
def test_unicode_encodings_decode(tmp_path: Path, encode) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "wide.txt"
    path.write_bytes(encode("Outlet: JNS\r\n\r\n" + ACCENTED.replace("\n", "\r\n") + "Hebrew: שלום\r\n"))
    doc = read_document(path)
    assert doc.outlet == "JNS"
    assert doc.body == ACCENTED + "Hebrew: שלום\n"  # CRLF normalised


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert "empty" in ingest_error(path).reason


def test_whitespace_only_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "blank.md"
    path.write_text("\n   \n\t\n", encoding="utf-8")
    assert "no text" in ingest_error(path).reason


def test_binary_junk_named_txt_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "photo.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + random.Random(1).randbytes(5000))
    assert "binary" in ingest_error(path).reason


def test_binary_without_nul_bytes_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "noise.txt"
    rng = random.Random(2)
    path.write_bytes(bytes(rng.choice([*range(1, 9), *range(14, 32), *range(0x80, 0x100)]) for _ in range(4000)))
    assert "binary" in ingest_error(path).reason


def test_over_size_limit_is_rejected_without_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.txt"
    path.write_text("Outlet: JNS\n\n" + "The talks went on for two hours. " * 100, encoding="utf-8")
    size = path.stat().st_size

    def no_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("read_document read a file over the size limit")

    monkeypatch.setattr(pathlib.Path, "read_bytes", no_read)
    monkeypatch.setattr(pathlib.Path, "read_text", no_read)
    monkeypatch.setattr(pathlib.Path, "open", no_read)
    monkeypatch.setattr(builtins, "open", no_read)
    monkeypatch.setattr(io, "open", no_read)
    error = ingest_error(path, max_bytes=size - 1)
    assert "limit" in error.reason
    assert f"{size:,} bytes" in error.reason  # sizes that round alike are shown exactly
    monkeypatch.undo()
    assert read_document(path, max_bytes=size).outlet == "JNS"  # exactly at the limit is fine


def test_size_message_is_readable(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"x " * 1500)
    error = ingest_error(path, max_bytes=1000)
    assert error.reason == "file is 3.0 kB, over the 1.0 kB limit"


def test_unsupported_suffix_and_missing_file(tmp_path: Path) -> None:
    doc = tmp_path / "report.docx"
    doc.write_bytes(b"PK\x03\x04")
    assert ".docx" in ingest_error(doc).reason
    assert "cannot read" in ingest_error(tmp_path / "gone.txt").reason


def test_script_markdown_links_and_control_characters_are_kept_as_text(tmp_path: Path) -> None:
    body = (
        "# Rafah talks\n\n"
        "The sides met, says the [White House statement](https://www.whitehouse.gov/briefing-room/).\n\n"
        "<script>alert('not executed, just text')</script>\n\n"
        "A bell \x07 and an escape \x1b[31m slipped into this paragraph\x0c of the article.\n"
    )
    path = tmp_path / "odd.md"
    path.write_text("Outlet: JNS\n\n" + body, encoding="utf-8")
    doc = read_document(path)
    assert doc.body == body


def test_decode_text_refuses_binary_directly() -> None:
    with pytest.raises(IngestError, match="binary"):
        decode_text(Path("x.txt"), bytes(range(256)) * 4)


def test_iter_source_files_skips_hidden_and_unsupported(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("b", encoding="utf-8")
    (tmp_path / "a.md").write_text("a", encoding="utf-8")
    (tmp_path / "c.docx").write_text("c", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.txt").write_text("x", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.PDF").write_bytes(b"%PDF")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_source_files([tmp_path])]
    assert found == ["a.md", "b.txt", "sub/d.PDF"]
    with pytest.raises(IngestError, match="no such file"):
        list(iter_source_files([tmp_path / "missing"]))


# --- offsets are the file's ----------------------------------------------------------------------

HEADED = "Title: Rafah talks\nOutlet: JNS\nDate: 2024-04-01\n\n" + BODY


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("header.txt", HEADED.encode("utf-8")),
        ("crlf.txt", HEADED.replace("\n", "\r\n").encode("utf-8")),
        ("cr.txt", HEADED.replace("\n", "\r").encode("utf-8")),
        ("bom.txt", codecs.BOM_UTF8 + HEADED.replace("\n", "\r\n").encode("utf-8")),
        ("bom-no-header.md", codecs.BOM_UTF8 + BODY.encode("utf-8")),
        ("front.md", ("---\ntitle: Rafah talks\noutlet: JNS\n---\n\n" + BODY).encode("utf-8")),
        ("no-header.txt", ("Washington: the talks went on.\n\n" + BODY).encode("utf-8")),
    ],
)
def test_chunk_offsets_index_the_file_text(tmp_path: Path, name: str, data: bytes) -> None:
    from rag.chunk import ChunkSettings, chunk_document, word_count

    path = tmp_path / name
    path.write_bytes(data)
    doc = read_document(path)
    file_text = path.read_text(encoding="utf-8")
    assert doc.text == file_text
    assert doc.body.strip() == BODY.strip() or doc.body.startswith("Washington:")
    chunks = chunk_document(doc, ChunkSettings(max_tokens=20, min_tokens=5), word_count)
    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.start >= doc.body_start
        assert file_text[chunk.start : chunk.end] == chunk.text
    assert "Title" not in "".join(c.text for c in chunks) and "outlet" not in "".join(c.text for c in chunks)


def test_pdf_header_block_is_kept_in_the_text_and_pages_keep_their_offsets(tmp_path: Path) -> None:
    path = tmp_path / "headed.pdf"
    path.write_bytes(
        make_pdf([["Title: Rafah talks", "Outlet: JNS", " ", "Top officials held a virtual meeting."], ["Page two."]])
    )
    doc = read_document(path)
    assert (doc.title, doc.outlet) == ("Rafah talks", "JNS")
    assert doc.text.startswith("Title: Rafah talks") and doc.body.startswith("Top officials")
    assert doc.pages == ((0, 1), (doc.text.index("Page two."), 2))
    assert doc.page_at(doc.body_start) == 1


@pytest.fixture
def linked_tree(tmp_path: Path) -> tuple[Path, Path]:
    """src/ (the folder indexed) with links of every kind, and outside/ next to it."""
    outside = tmp_path / "outside"
    (outside / "private").mkdir(parents=True)
    (outside / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    (outside / "private" / "diary.txt").write_text("Dear diary", encoding="utf-8")
    src = tmp_path / "src"
    (src / "articles").mkdir(parents=True)
    (src / "articles" / "a.txt").write_text("article a", encoding="utf-8")
    (src / ".hidden").mkdir()
    (src / ".hidden" / "h.txt").write_text("hidden", encoding="utf-8")
    (src / "passwd.txt").symlink_to(outside / "passwd")  # a file outside
    (src / "private").symlink_to(outside / "private", target_is_directory=True)  # a folder outside
    (src / "latest.txt").symlink_to(Path("articles") / "a.txt")  # a file inside: fine
    (src / "mirror").symlink_to("articles", target_is_directory=True)  # a folder inside: fine
    (src / "articles" / "up").symlink_to("..", target_is_directory=True)  # a loop
    (src / "loop1.txt").symlink_to("loop2.txt")  # a loop of links
    (src / "loop2.txt").symlink_to("loop1.txt")
    (src / "gone.txt").symlink_to("nowhere.txt")  # broken
    (src / "peek.txt").symlink_to(Path(".hidden") / "h.txt")  # inside, but hidden
    return src, outside


def test_links_are_followed_only_inside_the_sources(linked_tree: tuple[Path, Path]) -> None:
    src, outside = linked_tree
    found = find_source_files([src])
    assert [p.relative_to(src).as_posix() for p in found.files] == ["articles/a.txt", "latest.txt", "mirror/a.txt"]
    reasons = {Path(path).relative_to(src).as_posix(): reason for path, reason in found.skipped}
    assert reasons["passwd.txt"].startswith(f"symbolic link to {outside / 'passwd'}, outside the files and folders")
    assert reasons["private"].startswith(f"symbolic link to {outside / 'private'}, outside")
    assert "loop" in reasons["articles/up"] and "loop" in reasons["loop1.txt"] and "loop" in reasons["loop2.txt"]
    assert reasons["gone.txt"] == "broken symbolic link (to nowhere.txt); skipped"
    assert "hidden" in reasons["peek.txt"]
    # The loop link inside the mirrored folder is met twice, and reported under both names.
    assert "loop" in reasons["mirror/up"]
    assert set(reasons) == {"passwd.txt", "private", "gone.txt", "peek.txt", "loop1.txt", "loop2.txt"} | {
        "articles/up",
        "mirror/up",
    }
    assert len(found.skipped) == 8


def test_a_link_target_is_inside_when_it_is_in_any_source(linked_tree: tuple[Path, Path]) -> None:
    src, outside = linked_tree
    found = find_source_files([src], roots=[src, outside])
    names = {p.relative_to(src).as_posix() for p in found.files}
    assert {"passwd.txt", "private/diary.txt"} <= names
    assert not any(Path(path).name in ("passwd.txt", "private") for path, _ in found.skipped)


def test_a_source_named_explicitly_is_read_even_as_a_link(linked_tree: tuple[Path, Path]) -> None:
    src, outside = linked_tree
    assert find_source_files([src / "passwd.txt"]).files == (src / "passwd.txt",)
    private = find_source_files([src / "private"])
    assert private.files == (src / "private" / "diary.txt",) and not private.skipped


def test_two_links_to_one_folder_and_a_link_inside_a_followed_folder(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "x.txt").write_text("x", encoding="utf-8")
    (tmp_path / "real" / "back").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "a").symlink_to("real", target_is_directory=True)
    (tmp_path / "b").symlink_to("real", target_is_directory=True)
    found = find_source_files([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in found.files] == ["a/x.txt", "real/x.txt"]
    reasons = {Path(path).relative_to(tmp_path).as_posix(): reason for path, reason in found.skipped}
    assert reasons == {
        "a/back": "symbolic link to a folder that contains it (a loop); not followed",
        "b": f"symbolic link to a folder already read as {tmp_path / 'a'}",
        "real/back": "symbolic link to a folder that contains it (a loop); not followed",
    }


def test_a_very_deep_folder_is_walked_without_recursion(tmp_path: Path) -> None:
    """A tree deeper than the recursion limit (an archive can hold one) is walked all the same.
    The limit is lowered for the test, so the tree on disk stays shallow enough to delete."""
    import sys
    import traceback

    deep = tmp_path.joinpath(*["d"] * 300)
    deep.mkdir(parents=True)
    (deep / "bottom.txt").write_text("found", encoding="utf-8")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(traceback.extract_stack()) + 100)
    try:
        found = find_source_files([tmp_path])
    finally:
        sys.setrecursionlimit(limit)
    assert found.files == (deep / "bottom.txt",)


def test_names_that_are_not_utf8_are_skipped_and_reported(tmp_path: Path) -> None:
    import os

    (tmp_path / "ok.txt").write_text("ok", encoding="utf-8")
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt"), "w", encoding="utf-8") as handle:
        handle.write("latin-1 name")
    found = find_source_files([tmp_path])
    assert found.files == (tmp_path / "ok.txt",)
    assert found.skipped == ((str(tmp_path / "caf\udce9.txt"), "name is not UTF-8 text; rename it to index it"),)


def test_unreadable_folder_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    (tmp_path / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path: object) -> object:
        if Path(str(path)).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    assert find_source_files([tmp_path]).skipped == (
        (str(tmp_path / "locked"), "cannot read folder (Permission denied); skipped"),
    )
