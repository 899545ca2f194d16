"""Time expressions in a question ("this week", "in March", "since 1 May", "the latest"),
resolved against the day the question is asked (`as_of`) into a window of publication days.

A rule-based scan finds the phrases, so that words like "May" or "march" count only where they
name a time; `dateparser` reads what the phrases say (explicit dates in their many spellings,
"last month", "two weeks ago"), and the period it reports (day, week, month, year) becomes the
window. Windows are whole days, inclusive at both ends, and never run past `as_of`:

- "this week" / "the past week": the 7 days before `as_of` and `as_of` itself (news sense: the
  week's news, whatever the weekday); "the past fortnight": the 14 days before it; "last week": the
  calendar week (Monday to Sunday) before the current one; "two weeks ago" / "a fortnight ago": the
  calendar week 14 days back; "the past N days/weeks/months": rolling;
- "this month" / "this year": from its first day to `as_of`; "last month" / "last year" and
  "in March", "August 2022", "in 2021": the whole calendar month or year; a month without a year
  is the most recent one that has begun by `as_of` ("in March" asked on 2024-02-10 is March 2023);
- "today", "yesterday", "on Monday" (the most recent Monday on or before `as_of`; "last Monday":
  strictly before, so "last Tuesday" asked on a Wednesday is the day before), "29 August 2022",
  "Aug 29" (most recent past one): that day;
- quarters, calendar ones: "Q3 2023", "2023 Q3", "the third quarter of 2023", "in Q1" / "in the
  first quarter" (the most recent one begun by `as_of`); "this quarter": from its first day;
  "last quarter": the one before;
- seasons, northern meteorological (spring = March to May, summer = June to August, autumn or fall
  = September to November, winter = December to February): "in the summer" / "during the winter"
  / "over the summer": the most recent one begun by `as_of`; "last summer" / "this past summer":
  the most recent one over before `as_of` (asked in April, "last winter" is the one just gone);
  "this spring": the one under way, or else the nearer of the last and the next, and no window when
  that is the next ("this summer" asked in April is a plan); "summer 2023", "the fall of 2023";
  "winter 2024": the one whose January and February are in 2024, "winter 2023/24" from December 2023;
- holidays with a fixed or computable day: Christmas (Eve, Day), New Year's (Day, Eve), Easter
  (Sunday, Monday, weekend = Good Friday to Easter Monday; by dateutil), Good Friday, Thanksgiving
  (the US one, the fourth Thursday of November), Independence Day / the Fourth of July (the US one),
  Halloween, Valentine's Day: "at Easter", "on Christmas Eve 2022", "last Christmas", as for seasons;
  Ramadan, the whole month ("during Ramadan", "since Ramadan", "Ramadan 2024"; the Umm al-Qura
  calendar, by hijridate, which covers 1924-2077; outside it, no window); Eid al-Fitr (1 Shawwal, 3
  days) and Eid al-Adha (10 Dhu al-Hijjah, 4 days), by the same calendar; a bare "Eid" is either, the
  most recent begun ("Eid 2024": from the first day of the year's first Eid to the last of its second);
  by the Hebrew calendar (pyluach), from the first full day, the evening before left out: Passover (15
  Nisan, 8 days, as kept outside Israel), Rosh Hashanah (2 days), Yom Kippur, Hanukkah (25 Kislev, 8
  days), Sukkot (15 Tishrei, 7 days), Shavuot (6 Sivan, 2 days), Purim (14 Adar, Adar II in a leap
  year); the Lunar or Chinese New Year by the Chinese calendar (lunar-python): the day and the six after
  it (China's "Spring Festival" the same), "Lunar New Year's Day" the day, "... Eve" the day before;
- "since X" / "after X" / "from X" bound the start, "until X" / "before X" / "by X" the end,
  "between X and Y" both;
- "the latest", "now", "currently", "recent", "so far": no window, a strong recency preference.

A quarter, season or holiday is a time only after a preposition ("in Q1", "since Easter", "at
Christmas"), with a modifier ("last quarter", "this spring", "over the summer") or with a year ("Q3
2023"), and not when a noun or "of" follows it ("Q3 earnings", "spring break", "Spring Break", "the
Christmas market", "the Easter Rising", "the Fall of Kabul", "the summer of love", "after the Eid
prayers", "the Yom Kippur War") or, for "fall", a word that makes it a drop ("after the fall in
prices"); "holiday", "break", "weekend" after a holiday name its time ("the Lunar New Year
holiday"). "In the new year" is not New Year's Day; "a Ramadan ceasefire", "a Passover truce" are things.

Events of a story ("since the ceasefire", "after the election", "since the start of the war") have
a day only the articles know: `event_bounds` finds the phrases and the caller dates them from its
articles (Retriever.event_day); the question is searched as written, the event's words included.
"Before the war" bounds nothing: the state of things before an event is reported long after it.

Left alone: a bare year or month ("the 2021 election", "Theresa May"), a date naming a thing ("the
May 9 rule", "the January 6 committee"), a baseline ("compared to a year ago", "than last year"), a
plan ("later this year", "next summer"), and anything the calendar cannot date. Diwali has no window:
its day comes from the Hindu lunisolar calendar, reckoned differently by region, and no small
pure-Python package for it was found; nor have holidays not listed above (Holi, Vesak). "Independence
Day" after a country ("Ukraine's Independence Day") and "Canadian Thanksgiving" are not read as the US
days. "In the fourth quarter" of a game reads as a calendar quarter (an `explicit`, soft window).

The window is the time the question is about, not always when it was reported: a report of
Monday's event may be published on Tuesday, and "the insurrection on January 6, 2021" names an
event still reported on years later (`explicit` marks windows from a written date, a quarter, whose
figures are reported after it ends, or a holiday). A retriever
should treat `until` of a short window, and any `explicit` window, as soft.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from rag.errors import QueryError
from rag.lexical import tokenize
from rag.types import Span

if TYPE_CHECKING:
    from hijridate import Hijri

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
_QUARTER_NUMBERS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "last": 4, "final": 4,
}  # fmt: skip
_SEASONS = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}  # first month, meteorological
_HOLIDAY_NAMES = (
    r"christmas(?:\s+(?:day|eve))?|xmas|new\s+year(?:['’]?s)?(?:\s+(?:day|eve))?|good\s+friday"
    r"|easter(?:\s+(?:sunday|monday|weekend))?|thanksgiving(?:\s+day)?|independence\s+day"
    r"|fourth\s+of\s+july|july\s+fourth|halloween|valentine['’]?s(?:\s+day)?|ramadan"
    r"|eid(?:[\s-]+(?:al|ul|el)[\s-]*(?:fitr|adha))?|passover|pesach|c?hanukk?ah|rosh\s+hashanah?|yom\s+kippur"
    r"|su(?:kk|cc)ot[h]?|sukkos|shavuot|shavuos|purim"
    r"|(?:lunar|chinese)\s+new\s+year(?:['’]?s)?(?:\s+(?:day|eve))?|spring\s+festival"
)

# Each alternative is a named group: its name says how the phrase is resolved.
_PHRASES = (
    rf"(?P<numeric>{_YEAR}[-/.](?:1[0-2]|0?[1-9])[-/.](?:[12]\d|3[01]|0?[1-9])\b"
    rf"|(?:[12]\d|3[01]|0?[1-9])[/.](?:[12]\d|3[01]|0?[1-9])[/.]{_YEAR})",
    rf"(?P<year_month>{_YEAR}-(?:1[0-2]|0[1-9])\b)(?!-)",
    rf"(?P<month_day>{_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?)",
    rf"(?P<day_month>(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?)",
    rf"(?P<part>(?P<part_word>early|mid|late)[-\s]+(?P<part_month>{_MONTH}(?:,?\s+{_YEAR})?))",
    rf"(?P<quarter>(?:q[1-4]|(?:first|second|third|fourth|1st|2nd|3rd|4th)\s+quarter)(?:,?\s+(?:of\s+)?{_YEAR})?"
    rf"|(?:last|final)\s+quarter,?\s+(?:of\s+)?{_YEAR}|{_YEAR}\s+q[1-4]"
    r"|(?P<quarter_rel>this|(?:the\s+)?(?:current|last|previous|past))\s+quarter)\b",
    rf"(?P<season>(?:(?P<season_mod>this(?:\s+past)?|(?:the\s+)?(?:last|past)|over\s+the)\s+)?"
    rf"(?P<season_name>spring(?!\s+festival)|summer|autumn|fall|winter)"
    rf"(?:,?\s+(?:of\s+)?(?P<season_year>{_YEAR})(?:[-/](?P<season_to>(?:19|20)?\d{{2}})\b)?)?)\b",
    rf"(?P<holiday>(?P<holiday_at>(?:at|over|around)\s+(?:the\s+)?)?(?:(?P<holiday_mod>this(?:\s+past)?|last|past)\s+)?"
    rf"(?P<holiday_name>{_HOLIDAY_NAMES})(?:,?\s+(?:of\s+)?(?P<holiday_year>{_YEAR}))?)\b",
    rf"(?P<month_year>{_MONTH},?\s+{_YEAR})",
    rf"(?P<bare_month>{_MONTH})",
    rf"(?P<bare_year>{_YEAR})",
    r"(?P<this_week>(?:this|(?:over\s+)?the\s+past|this\s+past|(?:over\s+)?the\s+last|past)\s+week"
    r"|(?:this|last|(?:over\s+)?the\s+past|this\s+past|(?:over\s+)?the\s+last|past)\s+fortnight)\b",
    rf"(?P<rolling>(?:the\s+|over\s+the\s+)?(?:past|last)\s+(?P<rolling_count>{_COUNT})\s+"
    r"(?P<rolling_unit>hour|day|week|fortnight|month|year)s?)\b",
    r"(?P<rolling_one>(?:the\s+|over\s+the\s+)?past\s+(?P<rolling_one_unit>day|month|year))\b",
    r"(?P<weekend>(?:this|last|the|over\s+the)\s+weekend)\b",
    r"(?P<night>last\s+night|overnight)\b",
    r"(?P<weekday>(?:(?P<weekday_mod>last|this\s+past|this|past)\s+)?"
    r"(?P<weekday_name>monday|tuesday|wednesday|thursday|friday|saturday|sunday))\b",
    r"(?P<relative>(?:last|previous|this)\s+(?:week|month|year)"
    rf"|(?P<ago_count>{_COUNT})\s+(?P<ago_unit>day|week|fortnight|month|year)s?\s+ago"
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
    "numeric", "year_month", "month_day", "day_month", "part", "quarter", "season", "holiday", "month_year",
    "bare_month", "bare_year",
    "this_week", "rolling", "rolling_one", "weekend", "night", "weekday", "relative", "recency",
)  # fmt: skip
# Quarters and holidays count as calendar dates: quarterly figures are reported after the quarter
# ends, and "at Easter" may name the event asked about. A season is only a stretch of time.
_CALENDAR = frozenset(
    {"numeric", "year_month", "month_day", "day_month", "part", "quarter", "holiday", "month_year", "bare_month",
     "bare_year"}
)  # fmt: skip
# A time that is only a point of comparison or a plan, not the time asked about.
_BASELINE = re.compile(
    r"\b(?:compared(?:\s+(?:to|with))?|relative(?:\s+to)?|than|versus|vs\.?|(?:up|down)(?:\s+from)?)\s*$", re.IGNORECASE
)
_FUTURE = re.compile(r"\b(?:later|next|coming)\s+$", re.IGNORECASE)
_NOUN_FOLLOWS = re.compile(r"\s+(?!(?:and|or|to|until|through|when|while|but|as|after|before)\b)[a-z]")
_BARE = frozenset({"bare_month", "bare_year"})  # need a preposition to be a time: "Theresa May", "2021 election"
_TO = frozenset({"to", "until", "till", "through"})  # what closes "from X ..."
_CONNECTORS = frozenset({"and", "or", "to"})  # join a time to the one before it
_NAMED = frozenset({"quarter", "season", "holiday"})  # need a preposition, a modifier or a year to be a time
# The word after a quarter, season or holiday: a noun makes the phrase part of a name or a thing ("spring
# break", "Q3 earnings", "the Christmas market", "Spring Break", "the Easter Rising", "the Fall of Kabul").
_NEXT_WORD = re.compile(r"\s+(?P<word>[A-Za-z]+)")
_FUNCTION_WORDS = frozenset({
    "a", "about", "across", "after", "again", "against", "ago", "already", "also", "amid", "among", "an", "and", "are",
    "around", "as", "at", "be", "been", "before", "but", "by", "can", "compared", "could", "did", "do", "does", "down",
    "during", "for", "from", "had", "has", "have", "he", "her", "his", "how", "i", "in", "into", "is", "it", "its",
    "may", "might", "must", "not", "now", "off", "on", "or", "our", "over", "shall", "she", "should", "since", "so",
    "than", "that", "the", "their", "then", "there", "these", "they", "this", "those", "through", "till", "to", "too",
    "until", "up", "versus", "vs", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom",
    "whose", "why", "will", "with", "would", "you",
})  # fmt: skip
_FALL_AS_DROP = frozenset({"in", "from", "to", "by", "below", "above", "back", "short", "out"})  # "a fall in prices"
# After a holiday these name its time, not a thing: "the Lunar New Year holiday", "the Christmas break".
_HOLIDAY_TIME_WORDS = frozenset({"holiday", "holidays", "break", "weekend", "period", "vacation", "festivities"})
_DATE_NAMES = frozenset({"month_day", "day_month", "month_year"})  # "the May 9 rule", "the January 6 committee"


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
    # The story events that set `since` ("the ceasefire"), dated from the articles; "" for none.
    events: str = ""

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
        if kind in ("relative", "this_week", *_NAMED) and _FUTURE.search(question, 0, match.start(kind)):
            continue  # "later this year", "next summer": what is planned, reported before it happens
        if kind in _NAMED and not _is_time(match, kind, prep, bool(found)):
            continue  # "Spring Break", "Q3 earnings", "the Fall of Kabul", "hot spring"
        if kind in _DATE_NAMES and not prep and _names_thing(question, match):
            continue  # "the May 9 rule": a date naming a thing, not the time asked about
        try:
            resolved = _resolve(match, kind, as_of)
        except (ValueError, OverflowError):  # "the past 999 years" from year 1: no such days
            continue
        if resolved is None:
            continue
        explicit = explicit or kind in _CALENDAR
        found.append((prep, *resolved))
        end = match.end()
        following = _NEXT_WORD.match(question, end) if kind == "holiday" else None
        if following and following["word"].lower() in _HOLIDAY_TIME_WORDS:
            end = following.end()  # "during the Lunar New Year *holiday*": the word is part of the time
        spans.append(Span(match.start() if prep else match.start(kind), end))
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


@dataclass(frozen=True)
class EventBound:
    """A start set by an event of the story ("since the ceasefire"), which only the articles can date."""

    prep: str  # since or after
    words: str  # the event as written ("ceasefire", "start of the war")
    terms: tuple[str, ...]  # what to look for in the articles: the event's words, stemmed


# Only the start: what happened since an event is reported after it, but "before the war" asks about
# the state of things then, as often reported long after ("How many trucks entered Gaza each day before
# the war?"), so it bounds no publication day. "Named after the ..." is no time at all.
_EVENT = re.compile(
    r"(?<!named )(?<!called )\b(?P<prep>[Ss]ince|[Aa]fter)\s+the\s+"
    r"(?P<words>[A-Za-z][\w'’-]*(?:\s+[A-Za-z][\w'’-]*){0,4})"
)
_EVENT_VERB = re.compile(r"[a-z]+ed|began|begun|broke|broken|came|hit|struck|took|went|started|ended", re.IGNORECASE)
# Words that say which end of the event, not what it is: "since the start of the war" is since the war.
_EVENT_EDGE = frozenset({"start", "beginning", "outbreak", "onset", "end", "close", "launch", "announcement"})


def event_bounds(question: str, scope: TimeScope) -> tuple[EventBound, ...]:
    """The story events that bound the question in time ("since the ceasefire", "after the election"):
    "since/after the <noun phrase>" where the phrase is not a time `resolve_time` read."""
    out: list[EventBound] = []
    for match in _EVENT.finditer(question):
        if any(span.start <= match.start() < span.end for span in scope.spans):
            continue  # "since the summer", "after the Easter weekend": a time already
        words: list[str] = []
        for word in match["words"].split():
            if word.lower() in _FUNCTION_WORDS - {"of", "the"} or (words and _EVENT_VERB.fullmatch(word)):
                break  # "since the ceasefire *was* agreed", "since the pandemic *began*": a verb ends it
            words.append(word)
        while words and words[-1].lower() in ("of", "the"):
            words.pop()
        terms = tuple(t for t in tokenize(" ".join(w for w in words if w.lower() not in _EVENT_EDGE)))
        if terms:
            out.append(EventBound(match["prep"].lower(), " ".join(words), terms))
    return tuple(out)


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


def _is_time(match: re.Match[str], kind: str, prep: str, after_time: bool) -> bool:
    """Is a quarter, season or holiday phrase a time? It needs a preposition ("in Q1", "since Easter"),
    a modifier ("last quarter", "this spring", "over the summer", "at Christmas") or a year ("Q3 2023")."""
    text = match.group(kind).lower()
    qualified = (
        (prep and (prep not in _CONNECTORS or after_time))
        or re.search(_YEAR, text)
        or match.group(f"{kind}_" + {"quarter": "rel", "season": "mod", "holiday": "mod"}[kind])
        or (kind == "holiday" and match["holiday_at"])
    )
    if not qualified:
        return False
    if kind == "holiday" and prep in ("in", "during") and re.fullmatch(r"new\s+year", text):
        return False  # "in the new year": a plan, or the months after it, not New Year's Day
    following = _NEXT_WORD.match(match.string, match.end())
    if following is None:
        return True
    word = following["word"]  # "of" is no function word here: "the Fall of Kabul" ("the fall of 2023" took its year)
    if kind == "season" and match["season_name"].lower() == "fall" and word.lower() in _FALL_AS_DROP:
        return False
    if kind == "holiday" and word.lower() in _HOLIDAY_TIME_WORDS:
        return True
    if word[0].isupper():  # "Spring Break", "the Summer Olympics", "the Easter Rising"
        return not match.group(kind).split()[-1][0].isupper()
    return word.lower() in _FUNCTION_WORDS


def _names_thing(question: str, match: re.Match[str]) -> bool:
    """A date after "the" and before a noun names a thing ("the May 9 rule", "the January 6 committee")."""
    following = _NEXT_WORD.match(question, match.end())
    return (
        re.search(r"\bthe\s+$", question[: match.start()], re.IGNORECASE) is not None
        and following is not None
        and following["word"].islower()
        and following["word"] not in _FUNCTION_WORDS
    )


def _lowercase_may(match: re.Match[str], kind: str) -> bool:
    """True for "may" in lower case, the verb ("what may happen on 5 ..."), unless a year follows it."""
    text = match.group(kind)
    return bool(re.search(r"\bmay\b", text)) and not re.search(_YEAR, text)


def _resolve(match: re.Match[str], kind: str, as_of: date) -> tuple[date, date] | None:
    if kind == "this_week":
        return as_of - timedelta(days=14 if match[kind].lower().endswith("fortnight") else 7), as_of
    if kind == "rolling":
        count = _count(match["rolling_count"])
        return _back(as_of, count, match["rolling_unit"].lower()), as_of
    if kind == "relative" and match["ago_count"] and match["ago_count"].lower().endswith(("few", "several")):
        # dateparser reads no vague count: "a few days ago" is 1 to 4 days back
        count, unit = _count(match["ago_count"]), match["ago_unit"].lower()
        return _back(as_of, count + 1, unit), _back(as_of, 1, unit)
    if kind == "relative" and match["ago_unit"] and match["ago_unit"].lower() == "fortnight":
        # dateparser reads no "fortnight": "a fortnight ago" is "two weeks ago", that calendar week
        day = _back(as_of, _count(match["ago_count"]), "fortnight")
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=6)
    if kind == "quarter":
        return _quarter(match, as_of)
    if kind == "season":
        return _season(match, as_of)
    if kind == "holiday":
        return _holiday(match, as_of)
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
    if unit == "fortnight":
        return as_of - timedelta(weeks=2 * count)
    if unit == "month":
        return as_of - relativedelta(months=count)
    return as_of - relativedelta(years=count)


def _quarter(match: re.Match[str], as_of: date) -> tuple[date, date]:
    """A calendar quarter: "Q3 2023", "the first quarter" (the most recent begun), "this"/"last quarter"."""
    text = " ".join(match["quarter"].lower().split())
    current = (as_of.month - 1) // 3 + 1
    if match["quarter_rel"]:
        year, number = as_of.year, current
        if not text.endswith(("this quarter", "current quarter")):  # last, previous, past: the one before
            year, number = (year, number - 1) if number > 1 else (year - 1, 4)
    else:
        digit = re.search(r"\bq([1-4])\b", text)
        number = int(digit[1]) if digit else _QUARTER_NUMBERS[text.split()[0]]  # "third quarter", "last quarter of"
        year_text = re.search(_YEAR, text)
        year = int(year_text[0]) if year_text else as_of.year - (number > current)
    first = date(year, 3 * number - 2, 1)
    return first, _month_end(first, 3)


def _season(match: re.Match[str], as_of: date) -> tuple[date, date] | None:
    """A meteorological season (spring = March to May, ..., winter = December to February)."""
    month = _SEASONS[match["season_name"].lower()]
    if match["season_year"]:
        year = int(match["season_year"])
        if match["season_to"]:  # "winter 2023/24": the winter from December 2023
            to = int(match["season_to"])
            if month != 12 or to % 100 != (year + 1) % 100:
                return None
        elif month == 12:  # "winter 2024": the one whose January and February are in 2024
            year -= 1
        first = date(year, month, 1)
        return first, _month_end(first, 3)
    modifier = " ".join((match["season_mod"] or "").lower().split())
    return _occurrence(lambda year: (date(year, month, 1), _month_end(date(year, month, 1), 3)), modifier, as_of)


def _holiday(match: re.Match[str], as_of: date) -> tuple[date, date] | None:
    """A holiday with a fixed or computable date (Easter: dateutil), in its year or the most recent one."""
    name = re.sub(r"['’]", "", " ".join(re.sub(r"-", " ", match["holiday_name"].lower()).split()))
    name = _SPELLINGS.get(name, name)
    if name == "spring festival" and not match["holiday_name"].istitle():
        return None  # "the spring festival" of a town is not China's Spring Festival
    modifier = " ".join((match["holiday_mod"] or "").lower().split())
    try:
        if name == "eid":
            return _either_eid(int(match["holiday_year"]) if match["holiday_year"] else None, modifier, as_of)
        if match["holiday_year"]:
            return _holiday_days(name, int(match["holiday_year"]))
        return _occurrence(lambda year: _holiday_days(name, year), modifier, as_of)
    except OverflowError:  # a Hijri date outside the calendar's table
        return None


_SPELLINGS = {
    "pesach": "passover", "hanukah": "hanukkah", "chanukah": "hanukkah", "chanukkah": "hanukkah",
    "rosh hashana": "rosh hashanah", "succot": "sukkot", "sukkoth": "sukkot", "succoth": "sukkot",
    "sukkos": "sukkot", "shavuos": "shavuot",
}  # fmt: skip


def _holiday_days(name: str, year: int) -> tuple[date, date]:
    from dateutil.easter import easter

    if name.startswith("easter") or name == "good friday":
        sunday = easter(year)
        first, last = {
            "good friday": (-2, -2), "easter monday": (1, 1), "easter weekend": (-2, 1)
        }.get(name, (0, 0))  # fmt: skip
        return sunday + timedelta(days=first), sunday + timedelta(days=last)
    if name == "ramadan":
        return _ramadan(year)
    if name.startswith("eid"):  # "eid al fitr", "eid ul adha"
        return _eid(_hijri_year_of(year, *_EIDS[name.endswith("adha")][:2]), name.endswith("adha"))
    if name in _HEBREW:
        return _hebrew(name, year)
    if name.startswith(("lunar", "chinese", "spring festival")):  # China's name for it
        return _lunar_new_year(name, year)
    if name in ("thanksgiving", "thanksgiving day"):  # the US one: the fourth Thursday of November
        first_thursday = date(year, 11, 1) + timedelta(days=(3 - date(year, 11, 1).weekday()) % 7)
        day = first_thursday + timedelta(weeks=3)
    elif name.startswith("new year"):
        day = date(year, 12, 31) if name.endswith("eve") else date(year, 1, 1)
    elif name.startswith(("christmas", "xmas")):
        day = date(year, 12, 24) if name.endswith("eve") else date(year, 12, 25)
    elif name == "halloween":
        day = date(year, 10, 31)
    elif name.startswith("valentine"):
        day = date(year, 2, 14)
    else:  # Independence Day (the US one), the Fourth of July
        day = date(year, 7, 4)
    return day, day


def _ramadan(year: int) -> tuple[date, date]:
    """The Ramadan that begins in `year` (the first, in the years that hold the start of two), as
    the Umm al-Qura calendar has it."""
    from hijridate import Hijri

    month = Hijri(_hijri_year_of(year, 9, 1), 9, 1)
    return _hijri_days(month, month.month_length())


# (Hijri month, day, days): Eid al-Fitr, 1 Shawwal, 3 days; Eid al-Adha, 10 Dhu al-Hijjah, 4 days
# (the day of sacrifice and the three days of Tashriq), as they are commonly kept as holidays.
_EIDS = ((10, 1, 3), (12, 10, 4))


def _eid(hijri_year: int, adha: bool) -> tuple[date, date]:
    from hijridate import Hijri

    month, day, days = _EIDS[adha]
    return _hijri_days(Hijri(hijri_year, month, day), days)


def _either_eid(year: int | None, modifier: str, as_of: date) -> tuple[date, date] | None:
    """Bare "Eid": either Eid, and so the most recent of the two begun by `as_of` (or the one the
    modifier picks): they are about 70 and 285 days apart, so the one just past is what "since Eid"
    or "during Eid" means. "Eid 2024" names one of the two Eids of that year, not which one: the
    window holds both (from the first day of the first to the last day of the second), soft as any
    holiday's."""
    from hijridate import Gregorian

    if year is not None:
        fitr, adha = _holiday_days("eid al fitr", year), _holiday_days("eid al adha", year)
        return min(fitr[0], adha[0]), max(fitr[1], adha[1])
    # The Eids in order: index 2h is Eid al-Fitr of Hijri year h, 2h + 1 its Eid al-Adha.
    start = 2 * (Gregorian(as_of.year, as_of.month, as_of.day).to_hijri().year + 1)
    return _occurrence(lambda index: _eid(index // 2, bool(index % 2)), modifier, as_of, start)


def _hijri_year_of(year: int, month: int, day: int) -> int:
    """The Hijri year whose `month`/`day` falls in Gregorian `year` (the first, in years holding two)."""
    from hijridate import Gregorian, Hijri

    hijri_year = Gregorian(year, 1, 1).to_hijri().year
    if Hijri(hijri_year, month, day).to_gregorian() < date(year, 1, 1):  # it was last year
        hijri_year += 1
    return hijri_year


def _hijri_days(first_day: Hijri, days: int) -> tuple[date, date]:
    start = first_day.to_gregorian()
    first = date(start.year, start.month, start.day)  # a plain date, not hijridate's subclass
    return first, first + timedelta(days=days - 1)


# (Hebrew month, counted from Nisan = 1 as pyluach does; day; days): each from its first full day, the
# evening before it left out as a calendar lists it. Passover: 8 days, as kept outside Israel (7 in
# Israel): the longer window loses nothing, news of its last day is Passover news.
# Sukkot: the 7 days of 15-21 Tishrei (the festival days after it, Shemini Atzeret and Simchat Torah, are
# holidays of their own); Shavuot, 6 Sivan, 2 days outside Israel; Purim, 14 Adar (Adar II in a leap
# year, month 13).
_HEBREW = {
    "passover": (1, 15, 8), "rosh hashanah": (7, 1, 2), "yom kippur": (7, 10, 1), "hanukkah": (9, 25, 8),
    "sukkot": (7, 15, 7), "shavuot": (3, 6, 2), "purim": (12, 14, 1),
}  # fmt: skip


def _hebrew(name: str, year: int) -> tuple[date, date]:
    """A Jewish holiday in Gregorian `year`, by the Hebrew calendar (pyluach)."""
    from pyluach.dates import HebrewDate
    from pyluach.hebrewcal import Year

    month, day, days = _HEBREW[name]
    # The Hebrew year begins in Tishrei (7), in the autumn: Passover of 2024 is in 5784, Hanukkah in 5785;
    # Adar (12, 13) is in the spring, with Nisan: Purim of 2025 is in 5785.
    hebrew_year = year + 3760 + (7 <= month <= 10)
    if name == "purim" and Year(hebrew_year).leap:
        month = 13  # Adar II
    first = HebrewDate(hebrew_year, month, day).to_pydate()
    return first, first + timedelta(days=days - 1)


def _lunar_new_year(name: str, year: int) -> tuple[date, date]:
    """The Lunar New Year in Gregorian `year` (21 January to 20 February), by the Chinese calendar
    (lunar-python). "Lunar New Year's Day": the day; "... Eve": the day before; plain: the day and the six
    after it, the week that China's Spring Festival holiday and Vietnam's Tet take off, not the 15 days to
    the Lantern Festival, which would make "during the Lunar New Year" a month of news."""
    from lunar_python import Lunar

    solar = Lunar.fromYmd(year, 1, 1).getSolar()
    day = date(solar.getYear(), solar.getMonth(), solar.getDay())
    if name.endswith("eve"):
        return day - timedelta(days=1), day - timedelta(days=1)
    return day, day + timedelta(days=0 if name.endswith("day") else 6)


def _occurrence(
    days_in: Callable[[int], tuple[date, date]], modifier: str, as_of: date, start: int | None = None
) -> tuple[date, date] | None:
    """Which year's season or holiday a phrase means. Plain ("in the summer", "at Easter"): the most
    recent begun by `as_of`; "last", "this past": the most recent over before `as_of` ("last winter" asked
    in April is the one just gone); "this": the one under way, else the nearer of the last and the next,
    and no window when that is the next one ("this summer" asked in April is a plan).

    `days_in` maps a year, or another index of the occurrences in order (from `start`, one that has not
    begun by `as_of`), to the days of one occurrence."""
    year = as_of.year + 1 if start is None else start
    while days_in(year)[0] > as_of:
        year -= 1
    begun = days_in(year)
    if modifier in ("last", "the last", "past", "the past", "this past"):
        return begun if begun[1] < as_of else days_in(year - 1)
    if modifier == "this" and begun[1] < as_of:
        coming = days_in(year + 1)
        if (coming[0] - as_of) < (as_of - begun[1]):
            return None
    return begun


def _month_end(first: date, months: int) -> date:
    """The last day of the `months` months from `first` (a first of a month)."""
    from dateutil.relativedelta import relativedelta

    return first + relativedelta(months=months) - timedelta(days=1)


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
