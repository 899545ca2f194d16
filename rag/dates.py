"""The publication date of an article, from the best evidence its file carries.

Sources, in order of precedence (the first that yields a date wins):
  1. the declared date: a header's `Date:` / `Published-At:` / `Published:` (or front matter),
     else the HTML page's published-time metadata (`html_published_date`), else the PDF's
     /CreationDate ("D:20240401120000Z");
  2. a date in the article's URL (`/2022/08/29/`, `/2022-08-29/`);
  3. a dateline near the start of the text ("April 1, 2024", "1 April 2024").
An article with none of these has no date (""): never the file's modification time, which is
the day it was saved, not the day it was published.

Dates are kept at day precision, as ISO "YYYY-MM-DD" strings: the day as the source wrote it,
in the source's own time zone. Question windows are whole days ("this week", "on Monday"),
outlets' times are in time zones that rarely agree, and a date-only string sorts and compares
correctly as text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import Any

from rag.types import Document

_MIN_YEAR = 1900  # older "dates" are parse accidents (or the PDF epoch of a broken generator)
_MAX_YEAR = 2100

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH = (
    r"(?P<month>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_WEEKDAY = r"(?:(?:mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?\.?,?\s+)?"
_ORD = r"(?:st|nd|rd|th)?"
# "April 1, 2024", "Apr. 1 2024", "1 April 2024", "1st of April, 2024", "2024-04-01" (a weekday may lead).
_TEXT_DATE = re.compile(
    rf"\b{_WEEKDAY}(?:{_MONTH}\s+(?P<day>\d{{1,2}}){_ORD},?\s+(?P<year>\d{{4}})"
    rf"|(?P<day2>\d{{1,2}}){_ORD}\s+(?:of\s+)?{_MONTH.replace('month', 'month2')},?\s+(?P<year2>\d{{4}})"
    r"|(?P<iso>\d{4}-\d{2}-\d{2}))\b",
    re.IGNORECASE,
)
# What may stand before a dateline's date on its line: nothing, a label, a byline, or a city.
_DATELINE_PREFIX = re.compile(
    r"^(?:"
    r"(?:first\s+)?(?:published|updated|posted|date[d]?|last\s+updated)(?:\s+(?:on|at))?\s*[:\-–—|]?"
    r"|by\s+[^,|•·\n]{1,60}[,|•·–—-]"
    r"|(?-i:[A-Z][A-Z .'-]{1,30})(?:\([A-Za-z]+\))?,?"  # an upper-case city
    r"|[|•·]"
    r")?\s*$",
    re.IGNORECASE,
)
_DATELINE_LINES = 15  # a dateline sits in the first lines: header, headline, byline

_URL_DATE = re.compile(r"/(?P<year>(?:19|20)\d{2})(?P<sep>[/-])(?P<month>[01]?\d)(?P=sep)(?P<day>[0-3]?\d)(?=[/._-]|$)")
_PDF_DATE = re.compile(r"^D:(\d{4})(\d{2})(\d{2})")
_NUMERIC_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?=$|[T\s])")

# HTML metadata naming the publication time, most specific first (lower-cased attribute values).
_META_PUBLISHED = (
    "article:published_time",
    "og:article:published_time",
    "og:published_time",
    "datepublished",
    "pubdate",
    "publishdate",
    "publish-date",
    "publish_date",
    "parsely-pub-date",
    "sailthru.date",
    "dc.date.issued",
    "dcterms.issued",
    "dc.date",
    "dcterms.created",
    "date",
)


def normalise_date(value: object) -> str:
    """The ISO day ("YYYY-MM-DD") a date value names, or "" when it names no whole day.

    Takes ISO dates and datetimes (the day as written, whatever the offset), "2022/08/29",
    PDF dates ("D:20240401120000+02'00'"), and written dates ("Mon, 01 Apr 2024 10:00 GMT",
    "April 1, 2024"). A value without a day ("April 2024") is not a date of publication."""
    if isinstance(value, datetime):
        return _checked(value.date())
    if isinstance(value, date):
        return _checked(value)
    text = str(value or "").strip()
    if not text or len(text) > 100:
        return ""
    for pattern in (_PDF_DATE, _NUMERIC_DATE):
        match = pattern.match(text)
        if match:
            return _day(*(int(g) for g in match.groups()))
    if re.fullmatch(r"\d{8}", text):  # "20240401"
        return _day(int(text[:4]), int(text[4:6]), int(text[6:]))
    return _written_date(text)


def _day(year: int, month: int, day: int) -> str:
    try:
        return _checked(date(year, month, day))
    except ValueError:
        return ""


def _checked(day: date) -> str:
    return day.isoformat() if _MIN_YEAR <= day.year <= _MAX_YEAR else ""


def _written_date(text: str) -> str:
    """A day written out in words ("Monday, April 1, 2024 10:32 AM ET"), parsed by dateutil."""
    from dateutil import parser

    # Two different defaults: a part the text leaves out shows up as a difference.
    try:
        first = parser.parse(text, default=datetime(2001, 1, 1), fuzzy=True, ignoretz=True)
        second = parser.parse(text, default=datetime(2002, 2, 2), fuzzy=True, ignoretz=True)
    except (ValueError, OverflowError, TypeError):
        return ""
    if (first.year, first.month, first.day) != (second.year, second.month, second.day):
        return ""
    return _checked(first.date())


def html_published_date(html: str) -> str:
    """The publication day an HTML page declares in its metadata, or "".

    Looks at, in order: `article:published_time` and similar <meta> tags (property, name or
    itemprop), JSON-LD `datePublished`, then <time datetime> (one marked `pubdate` or
    `itemprop=datePublished` first). Modification times are never used."""
    from lxml import etree
    from lxml import html as lxml_html

    try:
        tree = lxml_html.fromstring(re.sub(r"^\s*<\?xml[^>]*>", "", html))
    except (etree.LxmlError, ValueError):
        return ""
    found: dict[str, str] = {}
    for meta in tree.iter("meta"):
        content = meta.get("content")
        if not content:
            continue
        for attribute in ("property", "name", "itemprop"):
            key = (meta.get(attribute) or "").strip().lower()
            if key in _META_PUBLISHED and key not in found:
                day = normalise_date(content)
                if day:
                    found[key] = day
    for key in _META_PUBLISHED[:4]:  # the article:/itemprop names outrank JSON-LD
        if key in found:
            return found[key]
    for value in _json_ld_published(tree):
        day = normalise_date(value)
        if day:
            return day
    for key in _META_PUBLISHED[4:]:
        if key in found:
            return found[key]
    times = [t for t in tree.iter("time") if t.get("datetime")]
    marked = [t for t in times if t.get("pubdate") is not None or (t.get("itemprop") or "").lower() == "datepublished"]
    for element in marked + times:
        day = normalise_date(element.get("datetime"))
        if day:
            return day
    return ""


def _json_ld_published(tree: Any) -> Iterator[str]:
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json" or not script.text:
            continue
        try:
            data = json.loads(script.text)
        except (ValueError, RecursionError):
            continue
        yield from _find_key(data, "datePublished", depth=0)


def _find_key(data: Any, key: str, depth: int) -> Iterator[str]:
    if depth > 8:  # JSON-LD graphs are shallow; a deep one is not worth walking
        return
    if isinstance(data, dict):
        value = data.get(key)
        if isinstance(value, str):
            yield value
        for child in data.values():
            if isinstance(child, dict | list):
                yield from _find_key(child, key, depth + 1)
    elif isinstance(data, list):
        for child in data:
            yield from _find_key(child, key, depth + 1)


def url_date(url: str) -> str:
    """The day in a URL's path (".../2022/08/29/slug", ".../2022-08-29/..."), or ""."""
    match = _URL_DATE.search(url or "")
    if not match:
        return ""
    return _day(int(match["year"]), int(match["month"]), int(match["day"]))


def dateline_date(text: str) -> str:
    """The day of a dateline in the first lines of an article's text, or "".

    A date counts when it opens its line or follows only a label ("Published:"), a byline
    ("By Jane Roe |") or a city ("WASHINGTON,"): a date inside a sentence or a photo caption
    ("...in Rafah, Dec. 14, 2022.") is what the article reports, not when it was published."""
    for line in text.splitlines()[:_DATELINE_LINES]:
        for match in _TEXT_DATE.finditer(line):
            if not _DATELINE_PREFIX.match(line[: match.start()].strip()):
                continue
            day = _text_date_day(match)
            if day:
                return day
    return ""


def _text_date_day(match: re.Match[str]) -> str:
    if match["iso"]:
        return normalise_date(match["iso"])
    month = (match["month"] or match["month2"]).lower()
    day = match["day"] or match["day2"]
    year = match["year"] or match["year2"]
    return _day(int(year), _MONTHS[month[:4] if month.startswith("sept") else month[:3]], int(day))


def article_date(declared: str, url: str, text: str) -> str:
    """The article's publication day: the declared date, else the URL's, else a dateline's; or ""."""
    return normalise_date(declared) or url_date(url) or dateline_date(text)


def count_undated(documents: Iterable[Document]) -> int:
    """How many of these articles have no publication date."""
    return sum(1 for doc in documents if not doc.date)


def parse_day(value: str) -> date | None:
    """A stored date string as a date (None when empty or unreadable), for filters and sorting.

    Indexes built before dates were normalised may hold "2024-04-01T21:14:00Z" or PDF dates."""
    day = normalise_date(value)
    return date.fromisoformat(day) if day else None


def display_date(value: str) -> str:
    """A date for a reader: "1 Apr 2024" (as in "JNS, 1 Apr 2024"); "" for no date."""
    day = parse_day(value)
    return f"{day.day} {day:%b %Y}" if day else ""


def attribution(outlet: str, published: str) -> str:
    """An outlet and its article's date, "JNS, 1 Apr 2024"; just the outlet when undated."""
    shown = display_date(published)
    return f"{outlet}, {shown}" if shown else outlet
