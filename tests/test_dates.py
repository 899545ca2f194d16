"""rag.dates: one publication day per article, from each source in its order of precedence."""

from __future__ import annotations

import io
import os
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from rag.dates import (
    article_date,
    attribution,
    count_undated,
    dateline_date,
    display_date,
    html_published_date,
    normalise_date,
    parse_day,
    url_date,
)
from rag.ingest import read_document
from rag.types import Document

BODY = (
    "Top Israeli and US officials held a virtual meeting on Monday to discuss Rafah.\n\n"
    "The sides agreed that they share the objective to see Hamas defeated, the White House said.\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- normalising a declared value ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "day"),
    [
        ("2024-04-01", "2024-04-01"),
        ("2024-04-01T23:30:00-04:00", "2024-04-01"),  # the day as the outlet wrote it
        ("2024-04-02T10:00:00Z", "2024-04-02"),
        ("2022/08/29", "2022-08-29"),  # the RealTime QA header
        ("20240401", "2024-04-01"),
        ("D:20240401120000+02'00'", "2024-04-01"),
        ("Mon, 01 Apr 2024 10:00:00 GMT", "2024-04-01"),
        ("Monday, April 1, 2024 10:32 AM ET", "2024-04-01"),
        ("1 April 2024", "2024-04-01"),
        ("April 2024", ""),  # no day: not a day of publication
        ("2024", ""),
        ("2 days ago", ""),
        ("2024-02-30", ""),
        ("1850-01-01", ""),
        ("soon", ""),
        ("", ""),
    ],
)
def test_normalise_date(value: str, day: str) -> None:
    assert normalise_date(value) == day


# --- 1. the header ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    ["Date: 2024-04-01", "Published-At: 2024/04/01", "Published: April 1, 2024", "Date: 2024-04-01T21:14:00+00:00"],
)
def test_header_date(tmp_path: Path, line: str) -> None:
    doc = read_document(write(tmp_path, "a.txt", f"Title: Rafah talks\nSource: JNS\n{line}\n\n{BODY}"))
    assert doc.date == "2024-04-01"


def test_header_date_wins_over_url_and_dateline(tmp_path: Path) -> None:
    text = (
        "Title: Rafah talks\nSource: JNS\nDate: 2024-04-01\nURL: https://www.jns.org/2024/03/30/rafah/\n\n"
        f"Published March 29, 2024\n{BODY}"
    )
    assert read_document(write(tmp_path, "a.txt", text)).date == "2024-04-01"


def test_unreadable_header_date_falls_back_to_the_url(tmp_path: Path) -> None:
    text = "Title: Rafah talks\nSource: JNS\nDate: last Monday\nURL: https://www.jns.org/2024/03/30/rafah/\n\n" + BODY
    assert read_document(write(tmp_path, "a.txt", text)).date == "2024-03-30"


def test_front_matter_datetime(tmp_path: Path) -> None:
    text = f"---\ntitle: Rafah talks\noutlet: JNS\ndate: 2024-04-01 21:14:00\n---\n\n{BODY}"
    assert read_document(write(tmp_path, "a.md", text)).date == "2024-04-01"


# --- 2. HTML metadata ---------------------------------------------------------------------------

ARTICLE_HTML = """<!DOCTYPE html><html><head><title>Rafah talks</title>
<meta property="og:site_name" content="The Jerusalem Post">
{head}
</head><body><article><h1>Rafah talks</h1>
{body}
<p>Israel's security will be harmed by a military operation in Rafah that would further isolate it on the
international stage, the US State Department said on Monday as top officials from both countries met.</p>
<p>At issue has been the over 1.3 million civilians in Rafah, many of whom fled there from other parts of the
Gaza Strip, and the US has asked Israel for a credible plan to protect them before any operation.</p>
</article></body></html>"""


@pytest.mark.parametrize(
    ("head", "body"),
    [
        ('<meta property="article:published_time" content="2024-04-01T21:14:00+00:00">', ""),
        ('<meta name="article:published_time" content="2024-04-01">', ""),
        ('<meta property="og:published_time" content="2024-04-01T08:00:00Z">', ""),
        ('<meta itemprop="datePublished" content="2024-04-01">', ""),
        ('<meta name="pubdate" content="20240401">', ""),
        ('<meta name="DC.date.issued" content="2024-04-01">', ""),
        (
            '<script type="application/ld+json">{"@context": "https://schema.org", "@graph": ['
            '{"@type": "WebPage", "name": "x"}, {"@type": "NewsArticle", "datePublished": "2024-04-01T09:00:00+03:00",'
            ' "dateModified": "2024-04-03T09:00:00+03:00"}]}</script>',
            "",
        ),
        ("", '<time datetime="2024-04-01T09:00:00Z">1 April</time>'),
        ("", '<time datetime="2024-03-02">2 March</time><time pubdate datetime="2024-04-01">1 April</time>'),
    ],
)
def test_html_published_metadata(tmp_path: Path, head: str, body: str) -> None:
    html = ARTICLE_HTML.format(head=head, body=body)
    assert html_published_date(html) == "2024-04-01"
    assert read_document(write(tmp_path, "page.html", html)).date == "2024-04-01"


def test_html_published_time_outranks_json_ld_and_time_elements() -> None:
    head = (
        '<meta property="article:published_time" content="2024-04-01T21:14:00+00:00">'
        '<script type="application/ld+json">{"datePublished": "2024-03-01"}</script>'
    )
    assert html_published_date(ARTICLE_HTML.format(head=head, body='<time datetime="2024-02-01">x</time>')) == (
        "2024-04-01"
    )


def test_html_modification_time_is_not_a_publication_date(tmp_path: Path) -> None:
    head = (
        '<meta property="article:modified_time" content="2024-04-05T10:00:00Z">'
        '<link rel="canonical" href="https://www.jpost.com/israel-news/2024/04/01/article-794812">'
    )
    html = ARTICLE_HTML.format(head=head, body="")
    assert html_published_date(html) == ""
    assert read_document(write(tmp_path, "page.html", html)).date == "2024-04-01"  # from the URL


def test_html_without_any_date_stays_undated(tmp_path: Path) -> None:
    html = ARTICLE_HTML.format(head='<link rel="canonical" href="https://www.jpost.com/article-794812">', body="")
    assert read_document(write(tmp_path, "page.html", html)).date == ""


# --- 3. PDF creation date -----------------------------------------------------------------------


def make_pdf(lines: list[str], info: dict[str, str]) -> bytes:
    """A one-page PDF with a real text layer, written by pypdf."""
    writer = PdfWriter()
    page = writer.add_blank_page(612, 792)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    fonts = DictionaryObject({NameObject("/F1"): font})
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
    shown = " ".join(f"({line}) Tj T*" for line in lines)
    content = DecodedStreamObject()
    content.set_data(f"BT /F1 11 Tf 14 TL 72 740 Td {shown} ET".encode("latin-1"))
    page.replace_contents(content)
    writer.add_metadata(info)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_creation_date(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    info = {"/CreationDate": "D:20240401120000+02'00'"}
    path.write_bytes(make_pdf(["Top officials met on Monday about Rafah."], info))
    assert read_document(path).date == "2024-04-01"


def test_pdf_without_creation_date_uses_a_dateline(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(make_pdf(["Rafah talks", "April 1, 2024", "Top officials met on Monday about Rafah."], {}))
    assert read_document(path).date == "2024-04-01"


# --- 4. the URL ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "day"),
    [
        ("https://www.cnn.com/2022/08/29/us/mega-millions/index.html", "2022-08-29"),
        ("https://www.usatoday.com/story/news/politics/2022/8/9/rudy-giuliani/10280069002/", "2022-08-09"),
        ("https://example.com/news/2022-08-29/slug", "2022-08-29"),
        ("https://example.com/2022/08/", ""),  # a month is not a day
        ("https://example.com/2022/13/29/x", ""),
        ("https://www.jpost.com/israel-news/article-794812", ""),
        ("", ""),
    ],
)
def test_url_date(url: str, day: str) -> None:
    assert url_date(url) == day


def test_header_url_dates_an_article_without_a_date_line(tmp_path: Path) -> None:
    text = (
        f"Title: Mega Millions\nSource: CNN\nURL: https://www.cnn.com/2022/08/29/us/mega-millions/index.html\n\n{BODY}"
    )
    assert read_document(write(tmp_path, "a.txt", text)).date == "2022-08-29"


# --- 5. a dateline ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "day"),
    [
        ("Rafah talks\nApril 1, 2024\n", "2024-04-01"),
        ("Rafah talks\n1 April 2024\n", "2024-04-01"),
        ("Rafah talks\nBy Jane Roe | Apr. 1, 2024\n", "2024-04-01"),
        ("Rafah talks\nPublished: Monday, 1st of April, 2024 10:32\n", "2024-04-01"),
        ("WASHINGTON (AP), Sept. 3, 2022 — The president said\n", "2022-09-03"),
        ("Rafah talks\n2024-04-01\n", "2024-04-01"),
        # a photo caption or a sentence reports a date; it is not the day of publication
        ("Rafah talks\nNetanyahu in Tel Aviv, Oct. 28, 2023. (AP Photo)\n", ""),
        ("Rafah talks\nThe war began on October 7, 2023, when Hamas attacked.\n", ""),
    ],
)
def test_dateline(start: str, day: str) -> None:
    assert dateline_date(start + BODY) == day


def test_dateline_only_near_the_start() -> None:
    text = "Rafah talks\n" + "A paragraph of the article.\n" * 30 + "April 1, 2024\n"
    assert dateline_date(text) == ""


def test_text_file_with_dateline(tmp_path: Path) -> None:
    text = f"Title: Rafah talks\nSource: JNS\n\nRafah talks\nBy JNS Staff | April 1, 2024\n\n{BODY}"
    assert read_document(write(tmp_path, "a.txt", text)).date == "2024-04-01"


# --- absent stays absent ------------------------------------------------------------------------


def test_no_date_anywhere_is_no_date_not_the_file_time(tmp_path: Path) -> None:
    path = write(tmp_path, "a.txt", f"Title: Rafah talks\nSource: JNS\n\n{BODY}")
    os.utime(path, (1711929600, 1711929600))  # 2024-04-01: must not become the article's date
    assert read_document(path).date == ""
    assert article_date("", "", BODY) == ""


def test_count_undated() -> None:
    docs = [
        Document(doc_id="a", source="a.txt", text="x", outlet="JNS", date="2024-04-01"),
        Document(doc_id="b", source="b.txt", text="y", outlet="JNS"),
        Document(doc_id="c", source="c.txt", text="z", outlet="CNN"),
    ]
    assert count_undated(docs) == 2
    assert count_undated([]) == 0


# --- for readers and filters --------------------------------------------------------------------


def test_display_and_attribution() -> None:
    assert display_date("2024-04-01") == "1 Apr 2024"
    assert display_date("2024-04-01T21:14:00Z") == "1 Apr 2024"  # stored by an older index
    assert display_date("") == ""
    assert attribution("JNS", "2024-04-01") == "JNS, 1 Apr 2024"
    assert attribution("JNS", "") == "JNS"


def test_parse_day() -> None:
    assert str(parse_day("D:20240401120000Z")) == "2024-04-01"
    assert parse_day("") is None
    assert parse_day("not a date") is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_value_is_a_valid_iso_day_or_nothing(value: str) -> None:
    day = normalise_date(value)
    assert day == "" or date.fromisoformat(day).isoformat() == day
    for found in (dateline_date(value), html_published_date(value), url_date(value)):
        assert found == "" or date.fromisoformat(found).isoformat() == found
