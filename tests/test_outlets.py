"""rag.outlets: naming an outlet in a question, and not seeing one in ordinary prose.

Decisions (what counts as naming an outlet):
  * a full name matches with or without "The", flexible spacing; a name with a distinctive word
    ("Jerusalem Post", "JNS") in any case;
  * a name made of common words only ("Times of Israel", "All Israel News") matches as the outlet
    writes it or all in lower/upper case, so "all Israel news outlets" and "in times of Israel's
    isolation" are prose, while "times of israel" typed in lower case still names the paper;
  * initials need two capitals: "ToI", "TOI", "AIN"; never "toi", "Ain't" or "as";
  * "the <masthead noun>" ("the Post") names the one outlet whose name ends with it, capitalised
    only: "the post office" and "the Post-war order" are prose; a place name never names an outlet
    on its own ("the Jerusalem talks", "the Israel-Hamas war").
"""

from __future__ import annotations

import pytest

from rag.outlets import find_outlets, outlet_key, strip_outlet_phrases

OUTLETS = ["JNS", "The Times of Israel", "All Israel News", "The Jerusalem Post"]


def named(question: str, outlets: list[str] = OUTLETS) -> list[tuple[str, str]]:
    return [(m.outlet, question[m.start : m.end]) for m in find_outlets(question, outlets)]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("According to ToI, how many hostages are left?", [("The Times of Israel", "ToI")]),
        ("What did TOI report?", [("The Times of Israel", "TOI")]),
        ("What did ToI's reporter say?", [("The Times of Israel", "ToI")]),
        ("What did the Post say about Rafah?", [("The Jerusalem Post", "the Post")]),
        ("What did The Post's reporters say?", [("The Jerusalem Post", "The Post")]),
        ("According to the Times of Israel, who led?", [("The Times of Israel", "the Times of Israel")]),
        ("according to times of israel, who led?", [("The Times of Israel", "times of israel")]),
        ("What does Times of Israel say?", [("The Times of Israel", "Times of Israel")]),
        ("In All Israel News, how many fighters?", [("All Israel News", "All Israel News")]),
        ("what does all israel news say", [("All Israel News", "all israel news")]),
        ("What does AIN say?", [("All Israel News", "AIN")]),
        ("Did the jerusalem post cover it?", [("The Jerusalem Post", "the jerusalem post")]),
        ("Did Jerusalem  Post cover it?", [("The Jerusalem Post", "Jerusalem  Post")]),
        ("jns numbers on Rafah", [("JNS", "jns")]),
        (
            "Was it in the Jerusalem Post or JNS?",
            [("The Jerusalem Post", "the Jerusalem Post"), ("JNS", "JNS")],
        ),
    ],
)
def test_outlet_is_found(question: str, expected: list[tuple[str, str]]) -> None:
    assert named(question) == expected


@pytest.mark.parametrize(
    "question",
    [
        "What's the world news today?",
        "What is the news in Israel?",
        "I went to the post office.",
        "The post office is closed",
        "The Post-war order in Gaza?",
        "What are the post-war plans?",
        "How long will the Israel-Hamas war last?",
        "What did the Israel Defense Forces say?",
        "What did the Jerusalem government decide?",
        "Who attended the Jerusalem talks?",
        "What are all Israel news outlets saying?",
        "In these times of Israel's isolation, who helps?",
        "Ain't that the News?",
        "toi",  # initials in lower case are a word, not a name
        "Is Israel at war?",
        "Who is Jacob Magid?",
        "Did the Times report it?",  # "Times" ends no outlet name here
        "What are the JNSX figures?",
    ],
)
def test_no_outlet_in_ordinary_prose(question: str) -> None:
    assert named(question) == []


def test_initials_in_lower_case_and_two_letter_initials_are_not_names() -> None:
    outlets = ["Arutz Sheva", "Israel National News", "The Washington Post"]
    assert named("What is it as of now?", outlets) == []
    assert named("As the talks went on, who spoke?", outlets) == []
    assert named("I stayed at the inn", outlets) == []
    assert named("as the Washington talks went on", outlets) == []
    assert named("What does AS say?", outlets) == [("Arutz Sheva", "AS")]
    assert named("What does INN say?", outlets) == [("Israel National News", "INN")]


def test_shared_masthead_noun_names_neither() -> None:
    outlets = ["The Jerusalem Post", "The Washington Post"]
    assert named("What did the Post say?", outlets) == []
    assert named("What did the Washington Post say?", outlets) == [("The Washington Post", "the Washington Post")]


def test_overlapping_mentions_are_counted_once() -> None:
    # "The Times of Israel" contains no other outlet's match; its initials alias must not double it.
    mentions = find_outlets("The Times of Israel (ToI) says", OUTLETS)
    assert [(m.outlet, m.start) for m in mentions] == [("The Times of Israel", 0), ("The Times of Israel", 21)]


def test_no_outlets_or_blank_names() -> None:
    assert find_outlets("According to JNS?", []) == []
    assert find_outlets("Anything at all", ["", "  "]) == []


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("According to ToI, how many hostages are left?", "how many hostages are left?"),
        ("As reported by the Jerusalem Post, who met?", "who met?"),
        ("How many fighters, according to JNS?", "How many fighters, ?"),
        ("What did The Post's reporters say?", "What did reporters say?"),
        ("Who led the US side in the Times of Israel report?", "Who led the US side in report?"),
    ],
)
def test_strip_outlet_phrases(question: str, expected: str) -> None:
    assert strip_outlet_phrases(question, find_outlets(question, OUTLETS)) == expected


def test_strip_outlet_phrases_never_returns_nothing() -> None:
    question = "The Jerusalem Post"
    assert strip_outlet_phrases(question, find_outlets(question, OUTLETS)) == question
    assert strip_outlet_phrases("How many?", []) == "How many?"


def test_outlet_key() -> None:
    assert outlet_key("The Times of Israel") == outlet_key("times of israel") == outlet_key("TIMES  OF ISRAEL")
    assert outlet_key("The Jerusalem Post") == outlet_key("Jerusalem Post")
    assert outlet_key("JNS") != outlet_key("Jerusalem Post")
    assert outlet_key("All Israel News") == "allisraelnews"
