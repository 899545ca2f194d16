"""A story's timeline: the quotes that answer a question, in the order they were published."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from rag.dates import parse_day
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
