"""rag.timeexpr: time phrases in a question resolved on a fixed as_of; as_of itself parsed."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.errors import QueryError, RagError
from rag.timeexpr import TimeScope, parse_as_of, parse_date, resolve_time, window_label

WEDNESDAY = date(2024, 4, 10)


def window(question: str, as_of: date = WEDNESDAY) -> tuple[date | None, date | None]:
    scope = resolve_time(question, as_of)
    return scope.since, scope.until


def d(text: str) -> date:
    return date.fromisoformat(text)


@pytest.mark.parametrize(
    ("question", "since", "until"),
    [
        # the week's news: the 7 days before the question and its day, whatever the weekday
        ("What happened in Rafah this week?", "2024-04-03", "2024-04-10"),
        ("Who spoke over the past week?", "2024-04-03", "2024-04-10"),
        # the calendar week before this one, Monday to Sunday
        ("Who resigned last week?", "2024-04-01", "2024-04-07"),
        ("What was agreed last month?", "2024-03-01", "2024-03-31"),
        ("What was agreed this month?", "2024-04-01", "2024-04-10"),
        ("What did Biden say on Monday?", "2024-04-08", "2024-04-08"),
        ("What did Biden say on Wednesday?", "2024-04-10", "2024-04-10"),  # on or before as_of
        ("What did Biden say last Wednesday?", "2024-04-03", "2024-04-03"),
        ("What happened in March?", "2024-03-01", "2024-03-31"),
        ("Who won yesterday?", "2024-04-09", "2024-04-09"),
        ("What happened today?", "2024-04-10", "2024-04-10"),
        ("What happened on 29 August 2022?", "2022-08-29", "2022-08-29"),
        ("What happened on August 29, 2022?", "2022-08-29", "2022-08-29"),
        ("What happened on 2022-08-29?", "2022-08-29", "2022-08-29"),
        ("What happened on Aug. 29?", "2023-08-29", "2023-08-29"),  # the most recent past one
        ("What was inflation in August 2022?", "2022-08-01", "2022-08-31"),
        ("What happened in 2021?", "2021-01-01", "2021-12-31"),
        ("Who won three days ago?", "2024-04-07", "2024-04-07"),
        ("What happened two weeks ago?", "2024-03-25", "2024-03-31"),
        ("What happened in the past 3 days?", "2024-04-07", "2024-04-10"),
        ("What happened a few days ago?", "2024-04-06", "2024-04-09"),
        ("What happened over the weekend?", "2024-04-06", "2024-04-07"),
        ("What happened in early March?", "2024-03-01", "2024-03-10"),
        ("What happened in late February?", "2024-02-21", "2024-02-29"),
        ("What happened in March or April?", "2024-03-01", "2024-04-10"),
    ],
)
def test_time_expressions(question: str, since: str, until: str) -> None:
    assert window(question) == (d(since), d(until))


@pytest.mark.parametrize(
    ("question", "since", "until"),
    [
        ("Protests since 3 March 2024?", "2024-03-03", None),
        ("Protests since March?", "2024-03-01", None),
        ("Protests since Monday?", "2024-04-08", None),
        ("Protests after 3 March 2024?", "2024-03-04", None),
        ("Protests before March 2024?", None, "2024-02-29"),
        ("Protests until 3 March 2024?", None, "2024-03-03"),
        ("Protests between 1 March and 15 March 2024?", "2024-03-01", "2024-03-15"),
        ("Protests from January to February?", "2024-01-01", "2024-02-29"),
        ("Protests from January?", "2024-01-01", "2024-01-31"),  # "articles from January": of January
    ],
)
def test_bounds(question: str, since: str | None, until: str | None) -> None:
    assert window(question) == (since and d(since), until and d(until))


def test_a_month_is_the_most_recent_one_begun_by_as_of() -> None:
    assert window("What happened in March?", as_of=date(2024, 2, 10)) == (d("2023-03-01"), d("2023-03-31"))
    assert window("What happened in March?", as_of=date(2024, 3, 15)) == (d("2024-03-01"), d("2024-03-15"))


def test_on_a_weekday_asked_on_that_weekday() -> None:
    monday = date(2024, 4, 8)
    assert window("What did he say on Monday?", as_of=monday) == (monday, monday)
    assert window("What did he say last Monday?", as_of=monday) == (d("2024-04-01"), d("2024-04-01"))


def test_label_for_the_reader() -> None:
    scope = resolve_time("Which company announced layoffs this week?", date(2022, 9, 2))
    assert scope.label == "Articles from 26 Aug to 2 Sep 2022"
    assert resolve_time("on Monday", WEDNESDAY).label == "Articles from 8 Apr 2024"
    assert resolve_time("since March", WEDNESDAY).label == "Articles since 1 Mar 2024"
    assert resolve_time("before March 2024", WEDNESDAY).label == "Articles up to 29 Feb 2024"
    assert window_label(d("2023-12-28"), d("2024-01-03")) == "Articles from 28 Dec 2023 to 3 Jan 2024"
    assert window_label(None, None) == ""


@pytest.mark.parametrize(
    "question",
    ["What is the latest on the hostage deal?", "Who is leading now?", "Who currently leads the talks?"],
)
def test_recency_words_ask_for_the_latest_without_a_window(question: str) -> None:
    scope = resolve_time(question, WEDNESDAY)
    assert scope.recency == "strong"
    assert not scope.has_window
    assert scope.label == "Latest articles first"


def test_in_recent_days_is_recency_and_leaves_the_query_whole() -> None:
    question = "Which island nation plunged into chaos in recent days?"
    scope = resolve_time(question, WEDNESDAY)
    assert (scope.recency, scope.has_window) == ("strong", False)
    assert scope.search_text(question) == "Which island nation plunged into chaos?"


def test_a_written_calendar_date_is_marked_explicit() -> None:
    # "the insurrection on January 6, 2021" names the event; the reports asked about came later
    assert resolve_time("What happened during the insurrection on January 6, 2021?", WEDNESDAY).explicit
    assert resolve_time("What happened in March?", WEDNESDAY).explicit
    assert not resolve_time("What happened this week?", WEDNESDAY).explicit
    assert not resolve_time("What happened on Monday?", WEDNESDAY).explicit


def test_recency_and_a_window_together() -> None:
    scope = resolve_time("What is the latest this week?", WEDNESDAY)
    assert (scope.recency, scope.since, scope.until) == ("strong", d("2024-04-03"), WEDNESDAY)


@pytest.mark.parametrize(
    "question",
    [
        "How many Hamas fighters are in Rafah?",
        "What did Theresa May say about Brexit?",  # a name, not a month
        "What may happen to the talks?",
        "What did USA Today report about the floods?",  # an outlet, not a day
        "Who won the 2021 election?",  # a year without a preposition names the thing, not the time
        "Will the march go ahead?",
        "Did Trump act unethically after the 2020 election?",
        "Which city saw rents rise most compared to a year ago?",  # a baseline, not the time asked about
        "Which singer will launch a residency later this year?",  # a plan, reported before it happens
    ],
)
def test_no_time_phrase(question: str) -> None:
    scope = resolve_time(question, WEDNESDAY)
    assert scope == TimeScope(as_of=WEDNESDAY)
    assert scope.search_text(question) == question


def test_spans_are_the_time_phrases_and_strip_removes_them() -> None:
    question = "What did Biden say on Monday about Rafah, the latest?"
    scope = resolve_time(question, WEDNESDAY)
    assert [question[s.start : s.end] for s in scope.spans] == ["on Monday", "the latest"]
    assert scope.search_text(question) == "What did Biden say about Rafah?"
    assert resolve_time("What happened in Rafah this week?", WEDNESDAY).search_text(
        "What happened in Rafah this week?"
    ) == ("What happened in Rafah?")


# --- as_of and explicit bounds ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-04-01", date(2024, 4, 1)),
        ("2024-04-01T09:30:00", date(2024, 4, 1)),
        ("2024-04-01T23:30:00-04:00", date(2024, 4, 1)),  # the day as written
        ("2024-04-01T09:30:00Z", date(2024, 4, 1)),
        (" 2024-04-01 ", date(2024, 4, 1)),
        ("2024/04/01", date(2024, 4, 1)),
        (datetime(2024, 4, 1, 9, 30), date(2024, 4, 1)),
        (date(2024, 4, 1), date(2024, 4, 1)),
    ],
)
def test_parse_as_of(value: str | date, expected: date) -> None:
    assert parse_as_of(value) == expected


def test_as_of_defaults_to_today() -> None:
    assert parse_as_of(None) == date.today()
    assert parse_as_of("") == date.today()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2024-13-45", "month must be in 1..12"),
        ("2024-02-30", "day is out of range for month"),
        ("2024-04-01T25:00", "hour must be in 0..23"),
        ("next Tuesday", "not an ISO date"),
        ("04/01/2024", "not an ISO date"),  # April or January: refused, not guessed
        ("2024-04-01\nrm -rf /", "not an ISO date"),
    ],
)
def test_invalid_as_of_is_one_line_query_error(value: str, reason: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_as_of(value)
    message = str(info.value)
    assert isinstance(info.value, RagError)
    assert "\n" not in message
    assert message.startswith("invalid as_of ")
    assert reason in message
    assert "YYYY-MM-DD" in message


def test_parse_date_names_the_bound() -> None:
    with pytest.raises(QueryError, match=r"^invalid since '2024-00-10'"):
        parse_date("2024-00-10", "since")


PHRASE_WORDS = (
    "on in since until before after between and or to from the latest now March May may Monday last this past "
    "week weeks month year days ago few 29 2022 2022-02-30 12/31/2022 early late weekend today USA Rafah ?"
)
WORDS = st.sampled_from(PHRASE_WORDS.split())


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(WORDS, max_size=10).map(" ".join)))
def test_any_question_resolves_with_ordered_spans_inside_it(question: str) -> None:
    scope = resolve_time(question, WEDNESDAY)
    ends = [0]
    for span in scope.spans:
        assert ends[-1] <= span.start < span.end <= len(question)
        ends.append(span.end)
    assert scope.label or not scope.has_window


@pytest.mark.parametrize(
    ("question", "since", "until"),
    [
        ("What happened in the past 48 hours?", "2024-04-01", "2024-04-03"),
        ("What was hit over the past 3 hours?", "2024-04-02", "2024-04-03"),
        ("What happened last night in Rafah?", "2024-04-02", "2024-04-03"),
        ("Were there strikes overnight?", "2024-04-02", "2024-04-03"),
    ],
)
def test_hours_and_last_night(question: str, since: str, until: str) -> None:
    scope = resolve_time(question, date(2024, 4, 3))
    assert (scope.since, scope.until) == (date.fromisoformat(since), date.fromisoformat(until))
