"""A question analysed once: its terms, what it asks for, its focus, its outlets, whether it leans
on the conversation, and its vectors. Retrieval and answering share this one object, so a question
is tokenised and embedded once on its way through `rag.ask`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date

import numpy as np

from rag.embed import Embedder
from rag.errors import QueryError
from rag.lexical import tokenize
from rag.outlets import find_outlets, outlet_key, strip_outlet_phrases
from rag.timeexpr import EventBound, TimeScope, event_bounds, resolve_time, window_label
from rag.validate import is_text

MAX_QUERY_CHARS = 2000  # longer questions are cut: nothing in a question needs more
HISTORY_TURNS = 2  # earlier questions a follow-up may lean on

# Words that point back into the conversation. A question with none of them (and more than one
# content words) is self-contained and answered as if asked alone, whatever came before.
_REFERRING = re.compile(
    r"\b(?:they|them|their|theirs|it|its|there|he|him|his|she|her|hers|this|that|these|those|"
    r"the same|such|the latter|the former|then)\b",
    re.IGNORECASE,
)
_CONTINUATION = re.compile(r"^\s*(?:and|but|also|so|what about|how about|and what about)\b", re.IGNORECASE)

# "What does JNS say *about the number of* fighters?": asks for an amount, of what follows.
_ABOUT_AMOUNT = r"(?:about|on|for) the (?:number|size|share|(?:death )?toll)"

# What a question asks for, in order of precedence.
_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("duration", re.compile(r"\bhow (?:long|soon)\b|\bfor how long\b", re.I)),
    (
        "number",
        re.compile(
            r"\bhow (?:many|much|large|big|old|high|far)\b|\bwhat (?:share|number|percentage|proportion|amount|"
            rf"fraction|age|figures?)\b|\bhow many\b|\b{_ABOUT_AMOUNT}\b",
            re.I,
        ),
    ),
    ("date", re.compile(r"\bwhen\b|\bwhat (?:date|day|year|month|time)\b|\bon what (?:date|day)\b", re.I)),
    ("name", re.compile(r"\bwho(?:m|se)?\b|\bwhat is the name\b|\bwhich (?:person|official|leader)\b", re.I)),
    ("place", re.compile(r"\bwhere\b|\bwhich (?:country|city|state|town|region|nation|continent)\b", re.I)),
    ("entity", re.compile(r"\b(?:which|what)\s+(?!is\b|are\b|was\b|were\b|do\b|does\b|did\b|has\b|have\b)\w+", re.I)),
)
_AUX = (
    r"are|is|were|was|do|does|did|have|has|had|will|would|could|can|should|may|might|been|be|remain|remains|"
    r"still|said|say|says|reported"
)
_FOCUS_AFTER = re.compile(
    rf"\b(?:how (?:many|much)|what (?:share|number|percentage|proportion|amount) of|"
    rf"{_ABOUT_AMOUNT} of|which|what)\s+"
    rf"((?:(?!(?:{_AUX})\b)[\w'-]+\s*){{1,3}})",
    re.IGNORECASE,
)
# "What figures do they give *for the number of* civilians?": what is counted wins over "figures".
_AMOUNT_FOCUS = re.compile(rf"\b{_ABOUT_AMOUNT} of\s+((?:(?!(?:{_AUX})\b)[\w'-]+\s*){{1,3}})", re.IGNORECASE)
_KIND_OF = re.compile(r"\b(?:kind|kinds|type|types|sort|sorts) of\s+", re.IGNORECASE)
_FOCUS_WHO = re.compile(rf"\bwho\s+(?:(?:{_AUX})\s+)?([\w'-]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Query:
    """One question, analysed."""

    text: str  # the question as searched: cleaned, phrases naming an outlet taken out
    asked: str  # the question as asked (cleaned)
    context: str  # earlier questions it leans on; "" when it is self-contained
    terms: tuple[str, ...]  # stemmed terms of `text`
    context_terms: tuple[str, ...]  # stemmed terms of `context` that are not in `terms`
    kind: str | None  # what it asks for: number, duration, date, name, place, entity, or None
    focus: tuple[str, ...]  # stemmed terms of what it asks about ("how many *fighters*")
    focus_text: str
    outlets: tuple[str, ...] | None  # only passages from these outlets (ticked or named in the question)
    named_outlets: bool  # the outlets were named in the question itself
    vector: np.ndarray  # the question's embedding
    context_vector: np.ndarray | None  # "context question" embedded, for a follow-up
    focus_vector: np.ndarray | None
    # When: the day it is asked (nothing published after it is used), the bounds asked for with it
    # (since/until, hard), and what the question's own words say about time (a soft window, recency).
    as_of: date
    since: date | None
    until: date | None
    time: TimeScope
    as_of_given: bool = False  # False: as_of is today by default, not worth telling the reader
    empty_window: str = ""  # the window the question's words asked for when no article is in it

    @property
    def follow_up(self) -> bool:
        return bool(self.context)

    @property
    def window_label(self) -> str:
        """The publication window a reader is told about: "Articles from 26 Aug to 2 Sep 2022"."""
        since = max((d for d in (self.since, self.time.since) if d is not None), default=None)
        until = min((d for d in (self.until, self.time.until) if d is not None), default=None)
        if until is None and self.as_of_given:
            until = self.as_of
        if self.empty_window:
            return f"{self.empty_window}: none in the index, so quotes from any date"
        label = window_label(since, until) or self.time.label
        if label and self.time.events:
            label += f" ({self.time.events} first named on {_day_month_year(self.time.since)})"
        return label

    def without_outlets(self) -> Query:
        return replace(self, outlets=None, named_outlets=False)


def clean_query(query: object, allow_empty: bool = False) -> str:
    """A question as text to search with; refuses one with nothing to search for."""
    if not isinstance(query, str):
        raise QueryError("the question must be text")
    if not is_text(query):  # lone surrogates (undecodable bytes): the tokenizer would raise TypeError
        raise QueryError("the question has bytes that are not UTF-8 text; type it again")
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", query)[:MAX_QUERY_CHARS]
    text = re.sub(r"\s+", " ", text).strip()
    if not re.search(r"\w", text):
        if allow_empty:
            return ""
        raise QueryError("the question is empty; ask about the articles in words")
    return text


# Pronouns that stand for what an earlier question asked about ("they", "its"), not for a place.
_POINTS_BACK = re.compile(r"\b(?:it|its|they|them|their|theirs|he|him|his|she|her|hers|this|that|these|those)\b", re.I)


def is_follow_up(question: str) -> bool:
    """Does the question lean on what was asked before ("And where were they held?")?"""
    return bool(_REFERRING.search(question) or _CONTINUATION.search(question) or len(tokenize(question)) <= 1)


def answer_kind(question: str) -> str | None:
    for kind, pattern in _KINDS:
        if pattern.search(question):
            return kind
    return None


def focus_of(question: str) -> str:
    """The words naming what is asked about: "how many Hamas fighters are..." -> "Hamas fighters"."""
    question = _KIND_OF.sub("", question)  # "what kind of link" asks about a link
    match = _AMOUNT_FOCUS.search(question) or _FOCUS_AFTER.search(question) or _FOCUS_WHO.search(question)
    if not match:
        return ""
    words: list[str] = []
    for word in match.group(1).split():
        if words and re.fullmatch(r"[a-z]+ed", word):  # a verb ends the noun phrase: "newspaper *reported*"
            break
        if tokenize(word):
            words.append(word)
    return " ".join(words)


def _names_a_thing(question: str) -> bool:
    """Is the question's focus a thing it counts or picks ("how many *civilians*", "which *countries*"),
    not the verb of a who-question ("who *led*")?"""
    return bool(_FOCUS_AFTER.search(_KIND_OF.sub("", question)))


def _event_window(
    time: TimeScope, events: Sequence[EventBound], event_day: Callable[[Sequence[str], date], date | None], day: date
) -> TimeScope:
    """The window story events set ("since the ceasefire": from the day the articles began reporting
    it). Soft (`explicit`), as a written date's: the day is read from the reporting, not known."""
    since = None
    named = []
    for event in events:
        when = event_day(event.terms, day)
        if when is not None:
            named.append(f"the {event.words}")
            since = when if since is None else max(since, when)
    if since is None:
        return time
    return replace(time, since=since, label=window_label(since, None), explicit=True, events=_join_words(named))


def _day_month_year(day: date | None) -> str:
    return f"{day.day} {day:%b %Y}" if day else ""


def _join_words(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def analyse(
    question: object,
    embedder: Embedder,
    history: Sequence[object] = (),
    outlets: Sequence[str] | None = None,
    known_outlets: Sequence[str] = (),
    as_of: date | None = None,
    since: date | None = None,
    until: date | None = None,
    has_articles: Callable[[date | None, date | None], bool] | None = None,
    event_day: Callable[[Sequence[str], date], date | None] | None = None,
) -> Query:
    """Everything retrieval and answering need to know about a question, computed once.

    `as_of` (default today) is the day it is asked; `since`/`until` bound the publication day.
    `has_articles(first, last)` says whether any article was published in those days (None: open).
    `event_day(terms, as_of)` dates a story event ("since the *ceasefire*") from the articles, or None."""
    asked = clean_query(question)
    day = as_of or date.today()
    if since is not None and until is not None and since > until:
        raise QueryError(f"since ({since.isoformat()}) is after until ({until.isoformat()})")
    turns = [h for h in (clean_query(h, allow_empty=True) for h in history) if h][-HISTORY_TURNS:]
    text = asked
    named = False
    mentions = find_outlets(asked, known_outlets) if known_outlets else []
    wanted: tuple[str, ...] | None = tuple(outlets) if outlets is not None else None
    if mentions:
        names = [m.outlet for m in mentions]
        if wanted is not None:
            allowed = {outlet_key(o) for o in wanted}
            names = [o for o in names if outlet_key(o) in allowed] or list(wanted)
        wanted = tuple(dict.fromkeys(names))
        named = True
        text = strip_outlet_phrases(asked, mentions) or asked
    time = resolve_time(text, day)
    empty = ""
    if time.has_window and has_articles is not None and not has_articles(time.since, time.until):
        # "this week" asked of an archive with nothing from this week: the words cannot be a window;
        # the question is searched as written and the reader told (`empty_window`).
        empty, time = time.label, replace(time, since=None, until=None, spans=(), label="", explicit=False)
    if not time.has_window and event_day is not None:
        time = _event_window(time, event_bounds(text, time), event_day, day)
    context = " ".join(turns) if turns and is_follow_up(text) else ""
    # Relative time words ("this week", "the latest") are the window, not what to search for; a
    # written date ("on January 6, 2021") may name the event itself and stays in the search text.
    if time.spans and not time.explicit:
        text = time.search_text(text)
    if context and not time.has_window:
        earlier = resolve_time(context, day)  # "What happened in Rafah this week?" -> "How many died?"
        if earlier.has_window and (has_articles is None or has_articles(earlier.since, earlier.until)):
            time = replace(earlier, spans=(), recency=time.recency if time.recency == "strong" else earlier.recency)
    terms = tuple(tokenize(text))
    focus_text = focus_of(text)
    if context and _names_a_thing(text) and not _POINTS_BACK.search(text):
        # A follow-up that names what it asks about ("And how many *civilians* are there?") replaces
        # what the earlier questions asked about ("How many *Hamas fighters* are in Rafah?"); the
        # rest of them ("in Rafah") still says where "there" is. One that points back at it ("How
        # many fighters do *they* have?" after "How many battalions...") keeps it.
        for earlier_focus in dict.fromkeys(focus_of(t) for t in turns if _names_a_thing(t)):
            if earlier_focus and not set(tokenize(earlier_focus)) & set(tokenize(focus_text)):
                context = re.sub(rf"(?<!\w){re.escape(earlier_focus)}(?!\w)", " ", context)
        context = re.sub(r"\s+", " ", context).strip()
    context_terms = tuple(t for t in dict.fromkeys(tokenize(context)) if t not in terms)
    texts = [text]
    if context:
        texts.append(f"{context} {text}")
    if focus_text:
        texts.append(focus_text)
    vectors = embedder.encode(texts)
    return Query(
        text=text,
        asked=asked,
        context=context,
        terms=terms,
        context_terms=context_terms,
        kind=answer_kind(text),
        focus=tuple(tokenize(focus_text)),
        focus_text=focus_text,
        outlets=wanted,
        named_outlets=named,
        vector=vectors[0],
        context_vector=vectors[1] if context else None,
        focus_vector=vectors[-1] if focus_text else None,
        as_of=day,
        since=since,
        until=until,
        time=time,
        as_of_given=as_of is not None,
        empty_window=empty,
    )
