"""rag.timeexpr: time phrases in a question resolved on a fixed as_of; as_of itself parsed."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.errors import QueryError, RagError
from rag.timeexpr import TimeScope, event_bounds, parse_as_of, parse_date, resolve_time, window_label

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
        # events of a story: only the articles know their day
        "What happened since the ceasefire?",
        "What happened at the start of the war?",
        "Who attacked before the ceasefire began?",
        # holidays of a calendar not read (Diwali: the Hindu lunisolar calendar)
        "What happened since Diwali?",
        "Will the talks resume in the new year?",  # a plan, or the months after it
        # a season, quarter, holiday or date that is part of a name or a thing
        "Who was killed after the Fall of Kabul?",
        "What caused the fall in oil prices?",
        "Were there arrests after the fall in prices?",
        "Which beaches were crowded during Spring Break?",
        "Which beaches were crowded during spring break?",
        "Who won gold at the Summer Olympics?",
        "What did the Summer of Love change?",
        "What did protesters want since the Arab Spring?",
        "Why did Q3 2023 earnings miss forecasts?",
        "Who was stabbed at the Christmas market?",
        "What happened after the Easter Rising?",
        "Will there be a Ramadan ceasefire?",
        "Will there be a Passover truce?",
        "What happened at the spring festival?",  # a town's, not China's Spring Festival
        "Who attended the Eid prayers?",
        "Who spoke after the Eid prayers?",
        "Who was hurt after the Passover seder?",
        "What changed after the Yom Kippur War?",
        "Who marched during the Lunar New Year parade?",
        "What happened on Ukraine's Independence Day?",
        "What is the May 9 rule?",
        "What did the January 6 committee find?",
        # a season or holiday without a preposition, a modifier or a year
        "Did prices fall?",
        "Which hot spring was closed?",
        "What did Christmas cost shoppers?",
        # a plan
        "Will the talks resume next summer?",
        "Who will visit later this summer?",
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
    "week weeks month year days ago few 29 2022 2022-02-30 12/31/2022 early late weekend today USA Rafah ? "
    "fortnight quarter Q1 q3 first summer fall Spring winter of Break Easter Christmas New Year's Eve Kabul"
    " Eid al-Adha Passover Hanukkah Lunar Yom Kippur Sukkot Purim"
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
        ("What happened a fortnight ago?", "2024-03-25", "2024-03-31"),  # as "two weeks ago": that calendar week
        ("What happened in the past fortnight?", "2024-03-27", "2024-04-10"),
        ("Who spoke over the last fortnight?", "2024-03-27", "2024-04-10"),
        ("What did Biden say on Tuesday?", "2024-04-09", "2024-04-09"),
        # "last" is strictly before as_of, not the week before: asked on a Wednesday, the day before
        ("What did Biden say last Tuesday?", "2024-04-09", "2024-04-09"),
        # quarters: the calendar ones; without a year, the most recent begun
        ("What did Apple earn in Q1?", "2024-01-01", "2024-03-31"),
        ("What did Apple earn in Q3?", "2023-07-01", "2023-09-30"),
        ("How fast did GDP grow in the first quarter?", "2024-01-01", "2024-03-31"),
        ("How fast did GDP grow in the fourth quarter?", "2023-10-01", "2023-12-31"),
        ("What did Apple earn in Q3 2023?", "2023-07-01", "2023-09-30"),
        ("Apple's profit, Q3 2023?", "2023-07-01", "2023-09-30"),
        ("Apple's profit in 2023 Q4?", "2023-10-01", "2023-12-31"),
        ("How fast did GDP grow in the third quarter of 2022?", "2022-07-01", "2022-09-30"),
        ("How fast did GDP grow in the last quarter of 2023?", "2023-10-01", "2023-12-31"),
        ("How fast did GDP grow last quarter?", "2024-01-01", "2024-03-31"),
        ("How fast did GDP grow in the previous quarter?", "2024-01-01", "2024-03-31"),
        ("How fast has GDP grown this quarter?", "2024-04-01", "2024-04-10"),
        # seasons: meteorological, northern; "this" the one under way, "last" the most recent over
        ("What happened this spring?", "2024-03-01", "2024-04-10"),
        ("What happened last summer?", "2023-06-01", "2023-08-31"),
        ("What happened this past summer?", "2023-06-01", "2023-08-31"),
        ("What happened in the winter?", "2023-12-01", "2024-02-29"),
        ("What happened last winter?", "2023-12-01", "2024-02-29"),  # the one just gone
        ("What happened this winter?", "2023-12-01", "2024-02-29"),  # over 41 days ago, the next 235 days away
        ("What happened in autumn?", "2023-09-01", "2023-11-30"),
        ("What happened in the fall?", "2023-09-01", "2023-11-30"),
        ("What happened over the summer?", "2023-06-01", "2023-08-31"),
        ("What happened in summer 2022?", "2022-06-01", "2022-08-31"),
        ("What happened in the fall of 2022?", "2022-09-01", "2022-11-30"),
        ("What happened in the winter of 2023?", "2022-12-01", "2023-02-28"),  # its January and February
        ("What happened in winter 2022/23?", "2022-12-01", "2023-02-28"),
        ("What happened in the fall, Biden said?", "2023-09-01", "2023-11-30"),
        ("Did prices fall this spring?", "2024-03-01", "2024-04-10"),
        # holidays with a fixed or computable day; without a year, the most recent begun (Easter 2024: 31 March)
        ("What did the Pope say at Easter?", "2024-03-31", "2024-03-31"),
        ("What happened over the Easter weekend?", "2024-03-29", "2024-04-01"),
        ("What happened on Good Friday?", "2024-03-29", "2024-03-29"),
        ("What happened on Easter Monday?", "2024-04-01", "2024-04-01"),
        ("What did the King say at Christmas?", "2023-12-25", "2023-12-25"),
        ("What did the King say last Christmas?", "2023-12-25", "2023-12-25"),
        ("What happened on Christmas Eve 2022?", "2022-12-24", "2022-12-24"),
        ("What happened on New Year's Day?", "2024-01-01", "2024-01-01"),
        ("What happened on Thanksgiving 2022?", "2022-11-24", "2022-11-24"),  # the fourth Thursday of November
        ("What happened on Independence Day?", "2023-07-04", "2023-07-04"),
        ("What happened on the Fourth of July?", "2023-07-04", "2023-07-04"),
        ("What happened on Halloween?", "2023-10-31", "2023-10-31"),
        ("What happened at Christmas and Easter?", "2023-12-25", "2024-03-31"),
    ],
)
def test_fortnights_quarters_seasons_holidays(question: str, since: str, until: str) -> None:
    assert window(question) == (d(since), d(until))


@pytest.mark.parametrize(
    ("question", "since", "until"),
    [
        ("Protests since Easter?", "2024-03-31", None),
        ("Protests before Easter?", None, "2024-03-30"),
        ("Protests after Christmas?", "2023-12-26", None),
        ("Protests since Thanksgiving?", "2023-11-23", None),
        ("Protests since New Year's Eve?", "2023-12-31", None),
        ("Protests since the new year?", "2024-01-01", None),
        ("Protests since the summer?", "2023-06-01", None),
        ("Protests before the winter?", None, "2023-11-30"),
        ("Protests since Q1?", "2024-01-01", None),
        ("Protests since Ramadan?", "2024-03-11", None),
        ("Protests since Eid al-Fitr?", "2024-04-10", None),
        ("Protests since Eid?", "2024-04-10", None),  # either Eid: the most recent begun
        ("Protests before Passover?", None, "2023-04-05"),  # 2024's is still to come
        ("Protests since the Lunar New Year?", "2024-02-10", None),
    ],
)
def test_bounds_by_holidays_seasons_quarters(question: str, since: str | None, until: str | None) -> None:
    assert window(question) == (since and d(since), until and d(until))


@pytest.mark.parametrize(
    ("question", "as_of", "since", "until"),
    [
        ("What happened last quarter?", "2024-02-10", "2023-10-01", "2023-12-31"),
        ("What happened in Q1?", "2024-02-10", "2024-01-01", "2024-02-10"),  # under way: up to as_of
        ("What happened last winter?", "2024-01-15", "2022-12-01", "2023-02-28"),  # this one is under way
        ("What happened this winter?", "2024-01-15", "2023-12-01", "2024-01-15"),
        ("What happened last summer?", "2024-07-15", "2023-06-01", "2023-08-31"),
        ("What happened last summer?", "2024-10-01", "2024-06-01", "2024-08-31"),
        ("What happened this summer?", "2024-10-01", "2024-06-01", "2024-08-31"),
        ("What happened at Easter?", "2024-03-20", "2023-04-09", "2023-04-09"),  # 2024's is still to come
        ("What happened this Christmas?", "2024-01-03", "2023-12-25", "2023-12-25"),
        # Ramadan, the whole month by the Umm al-Qura calendar: 1445 AH = 11 Mar to 9 Apr 2024
        ("What happened during Ramadan?", "2024-04-20", "2024-03-11", "2024-04-09"),
        ("What happened during Ramadan?", "2024-03-20", "2024-03-11", "2024-03-20"),  # under way: up to as_of
        ("What happened last Ramadan?", "2024-03-20", "2023-03-23", "2023-04-20"),
        ("What happened in Ramadan 2023?", "2024-11-01", "2023-03-23", "2023-04-20"),
        ("What happened during Ramadan?", "2024-02-01", "2023-03-23", "2023-04-20"),  # 2024's is still to come
    ],
)
def test_which_year_a_season_quarter_or_holiday_is(question: str, as_of: str, since: str, until: str) -> None:
    assert window(question, as_of=d(as_of)) == (d(since), d(until))


@pytest.mark.parametrize(
    ("question", "as_of", "since", "until"),
    [
        # Eid al-Fitr, 1 Shawwal, 3 days; Eid al-Adha, 10 Dhu al-Hijjah, 4 days (Umm al-Qura, by hijridate)
        ("What happened during Eid al-Fitr?", "2024-05-01", "2024-04-10", "2024-04-12"),
        ("What happened during Eid ul-Fitr 2024?", "2024-11-01", "2024-04-10", "2024-04-12"),
        ("What happened over Eid al-Adha?", "2024-07-01", "2024-06-16", "2024-06-19"),
        ("What happened last Eid al-Adha?", "2024-06-17", "2023-06-28", "2023-07-01"),  # this one is under way
        ("What happened in Eid-al-Adha 2023?", "2024-11-01", "2023-06-28", "2023-07-01"),
        # bare "Eid": either, the most recent begun; "last Eid" during Eid al-Adha is Eid al-Fitr
        ("What happened during Eid?", "2024-05-01", "2024-04-10", "2024-04-12"),
        ("What happened during Eid?", "2024-07-01", "2024-06-16", "2024-06-19"),
        ("What happened last Eid?", "2024-06-17", "2024-04-10", "2024-04-12"),
        ("What happened over Eid 2024?", "2024-11-01", "2024-04-10", "2024-06-19"),  # both of the year's Eids
        # Passover, 15 Nisan, 8 days (began at sundown on 22 April 2024); Hanukkah, 25 Kislev, 8 days
        ("What happened during Passover?", "2024-05-01", "2024-04-23", "2024-04-30"),
        ("What happened during Passover?", "2024-04-25", "2024-04-23", "2024-04-25"),  # under way: up to as_of
        ("What happened last Passover?", "2024-04-25", "2023-04-06", "2023-04-13"),
        ("What happened over Pesach 2024?", "2024-11-01", "2024-04-23", "2024-04-30"),
        ("What happened during Hanukkah?", "2024-01-10", "2023-12-08", "2023-12-15"),
        ("What happened at Chanukah 2023?", "2024-11-01", "2023-12-08", "2023-12-15"),
        # Rosh Hashanah, 1-2 Tishrei; Yom Kippur, 10 Tishrei
        ("What happened on Rosh Hashanah?", "2023-10-01", "2023-09-16", "2023-09-17"),
        ("What happened on Rosh Hashana 2023?", "2024-11-01", "2023-09-16", "2023-09-17"),
        ("What happened on Yom Kippur?", "2023-10-01", "2023-09-25", "2023-09-25"),
        ("What happened on Yom Kippur 2023?", "2024-11-01", "2023-09-25", "2023-09-25"),
        # Sukkot, 15 Tishrei, 7 days; Shavuot, 6 Sivan, 2 days; Purim, 14 Adar (Adar II in leap 5784)
        ("What happened during Sukkot?", "2024-11-01", "2024-10-17", "2024-10-23"),
        ("What happened over Succot 2023?", "2024-11-01", "2023-09-30", "2023-10-06"),
        ("What happened on Shavuot?", "2025-07-01", "2025-06-02", "2025-06-03"),
        ("What happened on Purim?", "2024-04-01", "2024-03-24", "2024-03-24"),
        ("What happened on Purim 2025?", "2025-11-01", "2025-03-14", "2025-03-14"),
        # the Lunar New Year (lunar-python): the day and the six after it; its Day; its Eve
        ("What happened during the Lunar New Year?", "2024-03-01", "2024-02-10", "2024-02-16"),
        ("What happened at Chinese New Year?", "2024-02-12", "2024-02-10", "2024-02-12"),
        ("What happened last Lunar New Year?", "2024-02-12", "2023-01-22", "2023-01-28"),  # this one is under way
        ("What happened on Lunar New Year's Day 2025?", "2025-03-01", "2025-01-29", "2025-01-29"),
        ("What happened on Chinese New Year's Eve?", "2024-03-01", "2024-02-09", "2024-02-09"),
        ("What happened during the Spring Festival?", "2024-03-01", "2024-02-10", "2024-02-16"),  # China's name
        # "holiday", "break", "weekend" after a holiday name its time, not a thing
        ("What happened during the Lunar New Year holiday?", "2024-03-01", "2024-02-10", "2024-02-16"),
        ("What happened over the Passover holiday?", "2024-05-01", "2024-04-23", "2024-04-30"),
    ],
)
def test_holidays_of_the_hijri_hebrew_and_chinese_calendars(question: str, as_of: str, since: str, until: str) -> None:
    scope = resolve_time(question, d(as_of))
    assert (scope.since, scope.until) == (d(since), d(until))
    assert scope.explicit
    assert scope.search_text(question) == "What happened?"


@pytest.mark.parametrize(
    ("question", "as_of"),
    [
        ("Will prices rise this summer?", "2024-04-10"),  # the next summer is nearer: a plan
        ("Will gas run short this winter?", "2024-11-20"),
        ("Where will the King spend this Christmas?", "2024-11-20"),
        ("Will there be a truce this Eid?", "2024-06-10"),  # Eid al-Adha, 6 days away, is nearer than Eid al-Fitr
        ("Where will the family spend this Hanukkah?", "2024-11-20"),
    ],
)
def test_this_season_or_holiday_still_to_come_is_no_window(question: str, as_of: str) -> None:
    scope = resolve_time(question, d(as_of))
    assert scope == TimeScope(as_of=d(as_of))
    assert scope.search_text(question) == question


@pytest.mark.parametrize(
    ("question", "stripped"),
    [
        ("What happened in Rafah in the past fortnight?", "What happened in Rafah?"),
        ("Who spoke over the last fortnight about Gaza?", "Who spoke about Gaza?"),
        ("What happened in Rafah a fortnight ago?", "What happened in Rafah?"),
        ("What did Biden say last Tuesday about Rafah?", "What did Biden say about Rafah?"),
        ("What happened in Rafah this spring?", "What happened in Rafah?"),
        ("Who won the election last summer?", "Who won the election?"),
        ("What happened in Kyiv over the summer?", "What happened in Kyiv?"),
        ("Which storms hit Texas during the winter of 2023?", "Which storms hit Texas?"),
        ("What did protesters demand in the fall?", "What did protesters demand?"),
    ],
)
def test_search_text_leaves_out_fortnights_and_seasons(question: str, stripped: str) -> None:
    scope = resolve_time(question, WEDNESDAY)
    assert not scope.explicit
    assert scope.search_text(question) == stripped


@pytest.mark.parametrize(
    ("question", "phrase"),
    [
        ("What did the Pope say at Easter about Gaza?", "at Easter"),
        ("What happened in Gaza since Christmas?", "since Christmas"),
        ("What happened over the Easter weekend in Kyiv?", "over the Easter weekend"),
        ("What did Apple earn in Q3 2023?", "in Q3 2023"),
        ("How fast did GDP grow last quarter?", "last quarter"),
    ],
)
def test_quarters_and_holidays_are_explicit_with_their_phrase_as_span(question: str, phrase: str) -> None:
    # quarterly figures are reported after the quarter; "at Easter" may name the event: a soft window,
    # and the words stay in the search text (rag.query leaves an explicit window's words in)
    scope = resolve_time(question, WEDNESDAY)
    assert scope.explicit
    assert [question[s.start : s.end] for s in scope.spans] == [phrase]


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


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How many trucks entered Gaza since the ceasefire?", [("since", "ceasefire", ("ceasefir",))]),
        ("What changed since the ceasefire was agreed?", [("since", "ceasefire", ("ceasefir",))]),
        ("Since the ceasefire, how many trucks have crossed?", [("since", "ceasefire", ("ceasefir",))]),
        ("Who was charged after the Highland Park shooting?", [("after", "Highland Park shooting", None)]),
        ("How many have died since the start of the war in Gaza?", [("since", "start of the war", ("war",))]),
        ("Who spoke since the pandemic began?", [("since", "pandemic", None)]),
        # A time, not an event; "before" bounds nothing (the state then is reported later); no time at all.
        ("What changed since the summer?", []),
        ("How many trucks entered Gaza each day before the war?", []),
        ("Which ship was named after the president?", []),
        ("What happened after the 2020 election?", []),
    ],
)
def test_story_events_that_bound_a_question_are_found(
    question: str, expected: list[tuple[str, str, tuple[str, ...] | None]]
) -> None:
    found = event_bounds(question, resolve_time(question, date(2024, 4, 1)))
    assert [(e.prep, e.words) for e in found] == [(p, w) for p, w, _ in expected]
    for event, (_, _, terms) in zip(found, expected, strict=True):
        assert event.terms and (terms is None or event.terms == terms)
