"""rag.sentences: sentence boundaries as offsets, on the kinds of text news articles contain."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.sentences import sentence_spans

SEEDS = Path(__file__).parent / "data" / "seeds"


def split(text: str) -> list[str]:
    return [text[s.start : s.end] for s in sentence_spans(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # titles and ranks
        (
            "Gen. Charles Q. Brown Jr., chairman of the Joint Chiefs, told Lt. Gen. Herzl Halevi. He agreed.",
            ["Gen. Charles Q. Brown Jr., chairman of the Joint Chiefs, told Lt. Gen. Herzl Halevi.", "He agreed."],
        ),
        (
            "Mr. Smith met Dr. Jones and Prof. Levi. They talked.",
            ["Mr. Smith met Dr. Jones and Prof. Levi.", "They talked."],
        ),
        # dotted abbreviations inside a sentence
        (
            "The U.S. opposes a full-scale incursion. The U.N. Security Council voted.",
            ["The U.S. opposes a full-scale incursion.", "The U.N. Security Council voted."],
        ),
        ("They met at 3 p.m. on Monday. Talks ended.", ["They met at 3 p.m. on Monday.", "Talks ended."]),
        (
            "The Oct. 7 massacre shocked Israel. It was a Saturday.",
            ["The Oct. 7 massacre shocked Israel.", "It was a Saturday."],
        ),
        ("Tents, e.g. from China, were ordered. Many.", ["Tents, e.g. from China, were ordered.", "Many."]),
        # numbers with dots are not ends
        ("The population rose to 1.3 million. Then it fell.", ["The population rose to 1.3 million.", "Then it fell."]),
        # other terminal punctuation
        (
            "Will they go? Nobody knows! Then 3,000 fighters left.",
            ["Will they go?", "Nobody knows!", "Then 3,000 fighters left."],
        ),
    ],
)
def test_abbreviations_and_initials(text: str, expected: list[str]) -> None:
    assert split(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "“We know that there are Hamas operators in Rafah,” she said. “We have to talk.” He agreed.",
            ["“We know that there are Hamas operators in Rafah,” she said.", "“We have to talk.”", "He agreed."],
        ),
        ('He said "no." Then he left.', ['He said "no."', "Then he left."]),
        ("The talks (held online.) Went well.", ["The talks (held online.)", "Went well."]),
        # a quote that continues the sentence after a comma does not end it
        ("“It will happen,” Dermer pledged. It did.", ["“It will happen,” Dermer pledged.", "It did."]),
    ],
)
def test_quotes(text: str, expected: list[str]) -> None:
    assert split(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "flexible toward the return of civilians as part of the deal.A senior political source said so.",
            ["flexible toward the return of civilians as part of the deal.", "A senior political source said so."],
        ),
        (
            "how important it is to have this conversation.”The US has been clear, Jean-Pierre said.There are ways.",
            [
                "how important it is to have this conversation.”",
                "The US has been clear, Jean-Pierre said.",
                "There are ways.",
            ],
        ),
    ],
)
def test_glued_sentences_are_split(text: str, expected: list[str]) -> None:
    assert split(text) == expected


def test_glued_split_needs_a_word_not_an_abbreviation() -> None:
    # "U.S.A" or "e.g.The" style runs of capitals are not glued sentences.
    assert split("He works for the U.S.A team now.") == ["He works for the U.S.A team now."]


def test_no_is_an_abbreviation_only_before_a_number() -> None:
    assert split("The answer was no. Israel will go ahead.") == ["The answer was no.", "Israel will go ahead."]
    assert split("Resolution No. 2728 passed. Next.") == ["Resolution No. 2728 passed.", "Next."]
    assert split("See fig. 3 for details. Next.") == ["See fig. 3 for details.", "Next."]


def test_newlines_end_sentences() -> None:
    text = "Headline without a period\nSubtitle, also without one\n\nBody sentence one. Body two.\n"
    assert split(text) == ["Headline without a period", "Subtitle, also without one", "Body sentence one.", "Body two."]


def test_lowercase_after_period_does_not_end() -> None:
    assert split("He cited approx. five battalions. Then left.") == ["He cited approx. five battalions.", "Then left."]
    assert split("It ends with a period. and goes on.") == ["It ends with a period. and goes on."]


def test_spans_are_trimmed_verbatim_and_ordered() -> None:
    text = "   First one.   Second one!  \n\n  Third?\t\n"
    spans = sentence_spans(text)
    assert [text[s.start : s.end] for s in spans] == ["First one.", "Second one!", "Third?"]
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:], strict=False))


def test_window_offsets_are_absolute() -> None:
    text = "Ignored prefix. Inside one. Inside two. Ignored suffix."
    start = text.index("Inside one")
    end = text.index(" Ignored suffix")
    spans = sentence_spans(text, start, end)
    assert [text[s.start : s.end] for s in spans] == ["Inside one.", "Inside two."]
    assert spans[0].start == start


def test_empty_and_blank() -> None:
    assert sentence_spans("") == []
    assert sentence_spans("  \n\n \t") == []


def test_seed_sentences() -> None:
    text = (SEEDS / "004_70201ae4656567ec.txt").read_text(encoding="utf-8")
    sentences = split(text)
    cabinet = "On Sunday, the war cabinet said it could be flexible toward the return of civilians to northern Gaza"
    assert cabinet + " as part of the deal." in sentences
    assert any(s.startswith("A senior political source said the proposal on the table") for s in sentences)
    text = (SEEDS / "000_7d35695503e2d372.txt").read_text(encoding="utf-8")
    sentences = split(text)
    assert any(
        s.startswith("Gen. Charles Q. Brown Jr., chairman of the U.S. Joint Chiefs of Staff, told IDF")
        for s in sentences
    )
    assert "The U.S. opposes a full-scale military incursion." in sentences
    for sentence in sentences:
        assert sentence == sentence.strip() and "\n" not in sentence
