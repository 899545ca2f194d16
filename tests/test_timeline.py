"""rag.timeline: quotes ordered by publication day, then outlet; undated last."""

from __future__ import annotations

from rag.timeline import TimelineEntry, order_timeline, timeline, timeline_markdown
from rag.types import Quote


def entry(outlet: str, published: str, text: str = "") -> TimelineEntry:
    quote = Quote(text=text or f"{outlet} {published}", outlet=outlet, title="", source=f"{outlet}.txt", start=0, end=1)
    return TimelineEntry(quote=quote, date=published)


def test_oldest_first_then_outlet_undated_last() -> None:
    entries = [
        entry("The Times of Israel", "2024-04-02"),
        entry("", "", "undated, no outlet"),
        entry("JNS", "2024-04-01"),
        entry("the Jerusalem Post", "2024-04-02"),
        entry("CNN", ""),
        entry("All Israel News", "2024-03-30"),
    ]
    ordered = [(e.quote.outlet, e.date) for e in order_timeline(entries)]
    assert ordered == [
        ("All Israel News", "2024-03-30"),
        ("JNS", "2024-04-01"),
        ("the Jerusalem Post", "2024-04-02"),  # same day: by outlet, ignoring case
        ("The Times of Israel", "2024-04-02"),
        ("", ""),  # undated keep the order they came in
        ("CNN", ""),
    ]


def test_same_day_and_outlet_keep_the_answers_order() -> None:
    first, second = entry("JNS", "2024-04-01", "first quote"), entry("JNS", "2024-04-01", "second quote")
    assert order_timeline([first, second]) == (first, second)
    assert order_timeline([second, first]) == (second, first)


def test_dates_stored_before_normalising_still_sort_by_day() -> None:
    late = entry("JNS", "2024-04-01T21:14:00Z")
    early = entry("CNN", "D:20240331120000Z")
    assert order_timeline([late, early]) == (early, late)
    assert order_timeline([]) == ()


def test_an_answers_quotes_as_a_timeline() -> None:
    quotes = [
        Quote("Some 3,000 fighters.", "JNS", "t", "s", 0, 1, date="2024-04-01"),
        Quote("Between 4,000 and 8,000.", "All Israel News", "t", "s", 0, 1, date="2024-03-30"),
        Quote("About 5,000.", "The Post", "t", "s", 0, 1),
    ]
    entries = timeline(quotes)
    assert [e.quote.outlet for e in entries] == ["All Israel News", "JNS", "The Post"]
    text = timeline_markdown(entries)
    assert text.splitlines() == [
        "**30 Mar 2024**",
        "- All Israel News: “Between 4,000 and 8,000.”",
        "",
        "**1 Apr 2024**",
        "- JNS: “Some 3,000 fighters.”",
        "",
        "**Undated**",
        "- The Post: “About 5,000.”",
    ]
