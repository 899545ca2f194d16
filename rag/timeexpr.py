"""Time expressions in a question ("this week", "in March", "since 1 May", "the latest"),
resolved against the day the question is asked (`as_of`) into a window of publication days.

A rule-based scan finds the phrases, so that words like "May" or "march" count only where they
name a time; `dateparser` reads what the phrases say (explicit dates in their many spellings,
"last month", "two weeks ago"), and the period it reports (day, week, month, year) becomes the
window. Windows are whole days, inclusive at both ends, and never run past `as_of`:

- "this week" / "the past week": the 7 days before `as_of` and `as_of` itself (news sense: the
  week's news, whatever the weekday); "last week": the calendar week (Monday to Sunday) before
  the current one; "the past N days/weeks/months": rolling;
- "this month" / "this year": from its first day to `as_of`; "last month" / "last year" and
  "in March", "August 2022", "in 2021": the whole calendar month or year; a month without a year
  is the most recent one that has begun by `as_of` ("in March" asked on 2024-02-10 is March 2023);
- "today", "yesterday", "on Monday" (the most recent Monday on or before `as_of`; "last Monday":
  strictly before), "29 August 2022", "Aug 29" (most recent past one): that day;
- "since X" / "after X" / "from X" bound the start, "until X" / "before X" / "by X" the end,
  "between X and Y" both;
- "the latest", "now", "currently", "recent", "so far": no window, a strong recency preference.

Left alone: a bare year or month ("the 2021 election", "Theresa May"), a baseline ("compared to
a year ago", "than last year"), a plan ("later this year"), and events ("since the ceasefire").

The window is the time the question is about, not always when it was reported: a report of
Monday's event may be published on Tuesday, and "the insurrection on January 6, 2021" names an
event still reported on years later (`explicit` marks windows from a written date). A retriever
should treat `until` of a short window, and any `explicit` window, as soft.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from rag.errors import QueryError
from rag.types import Span

Recency = Literal["mild", "strong"]  # mild: the default prior; strong: "latest", "now", "currently"

_MONTH_NAMES = (
    r"january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec"
)
_MONTH = rf"(?:{_MONTH_NAMES})\b\.?"
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?\b"
_YEAR = r"(?:19|20)\d{2}\b"
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_COUNT_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "few": 3, "a few": 3, "several": 5,
}  # fmt: skip
_COUNT = r"(?:\d{1,3}|a few|few|several|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"

# Each alternative is a named group: its name says how the phrase is resolved.
_PHRASES = (
    rf"(?P<numeric>{_YEAR}[-/.](?:1[0-2]|0?[1-9])[-/.](?:[12]\d|3[01]|0?[1-9])\b"
    rf"|(?:[12]\d|3[01]|0?[1-9])[/.](?:[12]\d|3[01]|0?[1-9])[/.]{_YEAR})",
    rf"(?P<year_month>{_YEAR}-(?:1[0-2]|0[1-9])\b)(?!-)",
    rf"(?P<month_day>{_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?)",
    rf"(?P<day_month>(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?)",
    rf"(?P<part>(?P<part_word>early|mid|late)[-\s]+(?P<part_month>{_MONTH}(?:,?\s+{_YEAR})?))",
    rf"(?P<month_year>{_MONTH},?\s+{_YEAR})",
    rf"(?P<bare_month>{_MONTH})",
    rf"(?P<bare_year>{_YEAR})",
    r"(?P<this_week>(?:this|the\s+past|this\s+past|the\s+last|past)\s+week)\b",
    rf"(?P<rolling>(?:the\s+|over\s+the\s+)?(?:past|last)\s+(?P<rolling_count>{_COUNT})\s+"
    r"(?P<rolling_unit>hour|day|week|month|year)s?)\b",
    r"(?P<rolling_one>(?:the\s+|over\s+the\s+)?past\s+(?P<rolling_one_unit>day|month|year))\b",
    r"(?P<weekend>(?:this|last|the|over\s+the)\s+weekend)\b",
    r"(?P<night>last\s+night|overnight)\b",
    r"(?P<weekday>(?:(?P<weekday_mod>last|this\s+past|this|past)\s+)?"
    r"(?P<weekday_name>monday|tuesday|wednesday|thursday|friday|saturday|sunday))\b",
    r"(?P<relative>(?:last|previous|this)\s+(?:week|month|year)"
    rf"|(?P<ago_count>{_COUNT})\s+(?P<ago_unit>day|week|month|year)s?\s+ago"
    r"|(?<!usa\s)(?:today|tonight|this\s+morning|this\s+afternoon|this\s+evening)|yesterday)\b",
    r"(?P<recency>(?:the\s+)?(?:very\s+)?(?:latest|most\s+recent(?:ly)?)|(?:right\s+|just\s+|as\s+of\s+)?now"
    r"|currently|current|recent(?:ly|\s+(?:days|weeks|months|years))?|at\s+the\s+moment|at\s+present|these\s+days"
    r"|so\s+far|to\s+date)\b",
)
_PREPOSITION = (
    r"(?P<prep>on|in|during|since|after|from|until|till|before|by|through|between|and|or|to)\s+(?P<the>the\s+)?"
)
_PATTERN = re.compile(rf"\b(?:{_PREPOSITION})?(?:{'|'.join(_PHRASES)})", re.IGNORECASE)
_KINDS = (
    "numeric", "year_month", "month_day", "day_month", "part", "month_year", "bare_month", "bare_year",
    "this_week", "rolling", "rolling_one", "weekend", "night", "weekday", "relative", "recency",
)  # fmt: skip
_CALENDAR = frozenset(
    {"numeric", "year_month", "month_day", "day_month", "part", "month_year", "bare_month", "bare_year"}
)
# A time that is only a point of comparison or a plan, not the time asked about.
_BASELINE = re.compile(
    r"\b(?:compared(?:\s+(?:to|with))?|relative(?:\s+to)?|than|versus|vs\.?|(?:up|down)(?:\s+from)?)\s*$", re.IGNORECASE
)
_FUTURE = re.compile(r"\b(?:later|next|coming)\s+$", re.IGNORECASE)
_NOUN_FOLLOWS = re.compile(r"\s+(?!(?:and|or|to|until|through|when|while|but|as|after|before)\b)[a-z]")
_BARE = frozenset({"bare_month", "bare_year"})  # need a preposition to be a time: "Theresa May", "2021 election"
_TO = frozenset({"to", "until", "till", "through"})  # what closes "from X ..."
_CONNECTORS = frozenset({"and", "or", "to"})  # join a time to the one before it


@dataclass(frozen=True)
class TimeScope:
    """What a question says about time, resolved against `as_of` (all days inclusive)."""

    as_of: date
    since: date | None = None
    until: date | None = None
    recency: Recency = "mild"
    label: str = ""  # for the reader: "Articles from 26 Aug to 2 Sep 2022"; "" without a window
    spans: tuple[Span, ...] = ()  # the time phrases in the question, to leave out of the search query
    # True when a calendar date written in the question made the window ("on January 6, 2021"): it
    # may name the event asked about rather than when it was reported, so filter on it softly.
    explicit: bool = False

    @property
    def has_window(self) -> bool:
        return self.since is not None or self.until is not None

    def search_text(self, question: str) -> str:
        """The question without its time phrases ("Who won in Rafah this week?" -> "Who won in Rafah?")."""
        out, last = [], 0
        for span in self.spans:
            out.append(question[last : span.start])
            last = span.end
        out.append(question[last:])
        text = " ".join("".join(out).split())
        text = re.sub(r"\s+([?.!,;:])", r"\1", text)
        text = re.sub(r"[,;:]+([?.!]|$)", r"\1", text)  # "about Rafah, the latest?" -> "about Rafah?"
        return text.strip(" ,;:") or question


def parse_date(value: str | date | datetime, what: str = "date") -> date:
    """A day from an ISO date or datetime ("2024-04-01", "2024-04-01T09:30:00+02:00"), as written.

    "2024/04/01" is read as "2024-04-01"; other forms ("04/01/2024") are ambiguous and refused.

    Raises QueryError with one line naming `what` ("as_of", "since", "until") when it is not one."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if re.fullmatch(r"\d{4}/\d{2}/\d{2}", text):  # "2022/06/16", as RealTime QA dates its questions
        text = text.replace("/", "-")
    shown = text if len(text) <= 40 else text[:37] + "..."
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text).date()
    except ValueError as exc:
        reason = str(exc) if "must be in" in str(exc) or "out of range" in str(exc) else "not an ISO date"
        raise QueryError(f"invalid {what} {shown!r}: {reason}; use YYYY-MM-DD") from None  # repr: one line


def parse_as_of(value: str | date | datetime | None) -> date:
    """The day a question is asked: `value` as parse_date reads it, or today when None/empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return date.today()
    return parse_date(value, "as_of")


def resolve_time(question: str, as_of: date) -> TimeScope:
    """The window and recency the question's time phrases ask for, against `as_of`."""
    recency: Recency = "mild"
    spans: list[Span] = []
    found: list[tuple[str, date, date]] = []  # (preposition, first day, last day) of each phrase
    explicit = False
    for match in _PATTERN.finditer(question):
        kind = next(k for k in _KINDS if match.group(k) is not None)
        prep = (match["prep"] or "").lower()
        if kind == "recency":
            recency = "strong"
            spans.append(Span(match.start() if prep in ("in", "during") else match.start(kind), match.end()))
            continue
        if kind in _BARE and (not prep or (prep in _CONNECTORS and not found)):
            continue  # "Theresa May", "the 2021 election", "Biden and May"; but "in March or April"
        if kind == "bare_year" and (match["the"] or _NOUN_FOLLOWS.match(question, match.end())):
            continue  # "after the 2020 election", "in 2020 polls": the year names the thing, not the time
        if _lowercase_may(match, kind) or _BASELINE.search(question, 0, match.start()):
            continue  # "what may happen"; "up 13% compared to a year ago"
        if kind in ("relative", "this_week") and _FUTURE.search(question, 0, match.start(kind)):
            continue  # "later this year": what is planned, reported before it happens
        explicit = explicit or kind in _CALENDAR
        try:
            resolved = _resolve(match, kind, as_of)
        except (ValueError, OverflowError):  # "the past 999 years" from year 1: no such days
            continue
        if resolved is None:
            continue
        found.append((prep, *resolved))
        spans.append(Span(match.start() if prep else match.start(kind), match.end()))
    since, until = _combine(found)
    if until is not None and until > as_of and (since is None or since <= as_of):
        until = as_of  # nothing after the day of the question exists yet
    return TimeScope(
        as_of=as_of,
        since=since,
        until=until,
        recency=recency,
        label=window_label(since, until) or ("Latest articles first" if recency == "strong" else ""),
        spans=tuple(spans),
        explicit=explicit,
    )


def _combine(found: list[tuple[str, date, date]]) -> tuple[date | None, date | None]:
    """One window from the phrases: bounds ("since X", "until Y") cut it, plain times widen it.

    "from X" and "between X" open a range only when a "to"/"until" or "and" phrase follows;
    alone, "articles from August" are articles of August."""
    window: tuple[date, date] | None = None
    start: date | None = None
    end: date | None = None
    for i, (prep, first, last) in enumerate(found):
        following = {p for p, _, _ in found[i + 1 :]}
        previous = found[i - 1][0] if i else ""
        if prep in ("from", "between") and not following & {"from": _TO, "between": {"and"}}[prep]:
            prep = "in"
        elif (prep == "to" and previous != "from") or (prep == "and" and previous != "between"):
            prep = "in"  # "Biden and 5 May": a time, not the end of a range
        if prep in ("since", "from", "between"):
            start = first if start is None else max(start, first)
        elif prep == "after":
            start = max(start or date.min, last + timedelta(days=1) if last < date.max else last)
        elif prep == "before":
            end = min(end or date.max, first - timedelta(days=1) if first > date.min else first)
        elif prep in _TO | {"by", "and"}:
            end = last if end is None else min(end, last)
        else:  # "on", "in", "during" or none: the time itself; two of them are both asked about
            window = (first, last) if window is None else (min(window[0], first), max(window[1], last))
    since = max((d for d in (window and window[0], start) if d is not None), default=None)
    until = min((d for d in (window and window[1], end) if d is not None), default=None)
    return since, until


def _lowercase_may(match: re.Match[str], kind: str) -> bool:
    """True for "may" in lower case, the verb ("what may happen on 5 ..."), unless a year follows it."""
    text = match.group(kind)
    return bool(re.search(r"\bmay\b", text)) and not re.search(_YEAR, text)


def _resolve(match: re.Match[str], kind: str, as_of: date) -> tuple[date, date] | None:
    if kind == "this_week":
        return as_of - timedelta(days=7), as_of
    if kind == "rolling":
        count = _count(match["rolling_count"])
        return _back(as_of, count, match["rolling_unit"].lower()), as_of
    if kind == "relative" and match["ago_count"] and match["ago_count"].lower().endswith(("few", "several")):
        # dateparser reads no vague count: "a few days ago" is 1 to 4 days back
        count, unit = _count(match["ago_count"]), match["ago_unit"].lower()
        return _back(as_of, count + 1, unit), _back(as_of, 1, unit)
    if kind == "rolling_one":
        return _back(as_of, 1, match["rolling_one_unit"].lower()), as_of
    if kind == "night":  # "last night": reported yesterday evening or this morning
        return as_of - timedelta(days=1), as_of
    if kind == "weekend":
        saturday = as_of - timedelta(days=(as_of.weekday() - 5) % 7)
        return saturday, saturday + timedelta(days=1)
    if kind == "weekday":
        weekday = _WEEKDAYS.index(match["weekday_name"].lower())
        back = (as_of.weekday() - weekday) % 7
        modifier = " ".join((match["weekday_mod"] or "").lower().split())
        if back == 0 and modifier in ("last", "this past", "past"):
            back = 7
        day = as_of - timedelta(days=back)
        return day, day
    if kind == "part":
        month = _parse(match["part_month"], as_of)
        if month is None:
            return None
        first, last = month
        part = match["part_word"].lower()
        if part == "early":
            return first, first + timedelta(days=9)
        if part == "mid":
            return first + timedelta(days=10), first + timedelta(days=19)
        return first + timedelta(days=20), last
    phrase = match.group(kind)
    if kind == "day_month":
        phrase = re.sub(r"^the\s+", "", phrase, flags=re.IGNORECASE)
    if kind == "bare_year":
        year = int(phrase)
        return date(year, 1, 1), date(year, 12, 31)
    return _parse(phrase, as_of)


def _count(word: str) -> int:
    word = " ".join(word.lower().split())
    return int(word) if word.isdigit() else _COUNT_WORDS[word]


def _back(as_of: date, count: int, unit: str) -> date:
    from dateutil.relativedelta import relativedelta

    if unit == "hour":  # "the past 48 hours": whole days, rounded up
        return as_of - timedelta(days=-(-count // 24))
    if unit == "day":
        return as_of - timedelta(days=count)
    if unit == "week":
        return as_of - timedelta(weeks=count)
    if unit == "month":
        return as_of - relativedelta(months=count)
    return as_of - relativedelta(years=count)


def _parse(phrase: str, as_of: date) -> tuple[date, date] | None:
    """dateparser's reading of a phrase, widened to the whole period it names."""
    from dateparser.date import DateDataParser

    parser = DateDataParser(
        languages=["en"],
        settings={
            "RELATIVE_BASE": datetime(as_of.year, as_of.month, as_of.day),
            "PREFER_DATES_FROM": "past",
            "RETURN_TIME_AS_PERIOD": True,
        },
    )
    data = parser.get_date_data(" ".join(phrase.split()))
    if data.date_obj is None:
        return None
    day = data.date_obj.date()
    if data.period == "week":  # the calendar week, Monday to Sunday
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=6)
    if data.period == "month":
        first = day.replace(day=1)
        return first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    if data.period == "year":
        return date(day.year, 1, 1), date(day.year, 12, 31)
    return day, day


def window_label(since: date | None, until: date | None) -> str:
    """The window for a reader: "Articles from 26 Aug to 2 Sep 2022", "Articles since 1 Mar 2024"; "" for none."""
    if since and until:
        if since == until:
            return f"Articles from {_day(since)}"
        head = f"{since.day} {since:%b}" if since.year == until.year else _day(since)
        return f"Articles from {head} to {_day(until)}"
    if since:
        return f"Articles since {_day(since)}"
    if until:
        return f"Articles up to {_day(until)}"
    return ""


def _day(day: date) -> str:
    return f"{day.day} {day:%b %Y}"
