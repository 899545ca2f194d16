"""A story's timeline: the quotes that answer a question, in the order they were published."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from rag.dates import display_date, parse_day
from rag.types import Quote


@dataclass(frozen=True)
class TimelineEntry:
    """A quote and the publication day of the article it comes from ("" when unknown)."""

    quote: Quote
    date: str = ""


def order_timeline(entries: Iterable[TimelineEntry]) -> tuple[TimelineEntry, ...]:
    """Oldest first; on the same day by outlet (ignoring case); undated entries last.

    Ties keep the order given (the answer's order), so who reported a figure first and how it
    moved reads top to bottom."""

    def key(entry: TimelineEntry) -> tuple[bool, date, str]:
        day = parse_day(entry.date)  # also reads dates stored before they were normalised
        return day is None, day or date.max, entry.quote.outlet.casefold()

    return tuple(sorted(entries, key=key))


def timeline(quotes: Iterable[Quote]) -> tuple[TimelineEntry, ...]:
    """An answer's quotes as a timeline (each dated by its article)."""
    return order_timeline(TimelineEntry(quote, quote.date or "") for quote in quotes)


def timeline_markdown(entries: Iterable[TimelineEntry]) -> str:
    """The timeline for a reader, one quote per line under its day: who reported what, and when.

    The first line says who reported first; undated quotes close the list under "Undated"."""
    lines: list[str] = []
    last_day: str | None = None
    for entry in entries:
        day = display_date(entry.date) or "Undated"
        if day != last_day:
            lines += ["", f"**{day}**"]
            last_day = day
        text = " ".join(entry.quote.text.split())
        lines.append(f"- {_md(entry.quote.outlet)}: “{_md(text)}”")
    return "\n".join(lines).strip()


def _md(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]()#!|~<>])", r"\\\1", text)
