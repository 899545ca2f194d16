"""The extractive composer: verbatim attributed quotes, agreement said once, figures side by side,
outlet-scoped questions, follow-ups, and an abstention threshold chosen on data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.answer import (
    ABSTAIN_TEXT,
    AnswerSettings,
    answer_question,
    confidence,
    score_sentences,
)
from rag.outlets import find_outlets, outlet_key, strip_outlet_phrases
from rag.retrieve import Retriever, get_retriever

DEV_QA = Path(__file__).parent / "data" / "seed_dev.jsonl"


def _verbatim(retriever: Retriever, answer_quotes: tuple) -> None:  # type: ignore[type-arg]
    for quote in answer_quotes:
        doc = retriever.stored.documents[quote.doc_id]
        assert doc.text[quote.start : quote.end] == quote.text
        assert doc.outlet == quote.outlet and doc.title == quote.title and doc.source == quote.source


def test_quotes_are_verbatim_and_attributed(fake_index: Path) -> None:
    retriever = get_retriever(fake_index)
    answer = answer_question(retriever, "How many tents did Israel order from China?")
    assert not answer.abstained and answer.quotes
    _verbatim(retriever, answer.quotes)
    assert any("40,000 tents" in q.text and q.outlet == "JNS" for q in answer.quotes)
    assert "**JNS**" in answer.text


def test_outlet_named_in_question_scopes_the_quotes(fake_index: Path) -> None:
    retriever = get_retriever(fake_index)
    for question, outlet in [
        ("According to All Israel News, how large is the Hamas force in Rafah?", "All Israel News"),
        ("What did the Post report about hostage negotiations?", "The Jerusalem Post"),
        ("According to ToI, how many hostages are held?", "The Times of Israel"),
    ]:
        answer = answer_question(retriever, question)
        assert answer.quotes, question
        assert {q.outlet for q in answer.quotes} == {outlet}, question


def test_figures_that_differ_are_shown_side_by_side(tmp_path: Path, write_article) -> None:  # type: ignore[no-untyped-def]
    from rag.embed import HashEmbedder
    from rag.index import build_index

    sources = tmp_path / "src"
    write_article(
        sources / "a.txt",
        "Officials said some 300 zeppelins are parked in the hangar at Lakehurst.",
        title="Zeppelins at Lakehurst",
        outlet="Airship Daily",
    )
    write_article(
        sources / "b.txt",
        "There are between 500 and 700 zeppelins parked in the hangar at Lakehurst.",
        title="Lakehurst hangar",
        outlet="Blimp Gazette",
    )
    write_article(
        sources / "c.txt",
        "The weather at Lakehurst was mild on Tuesday with light winds.",
        title="Weather",
        outlet="Blimp Gazette",
    )
    build_index([sources], tmp_path / "idx", embedder=HashEmbedder())
    answer = answer_question(get_retriever(tmp_path / "idx"), "How many zeppelins are parked in the hangar?")
    note = next(n for n in answer.notes if "differ" in n)
    assert "Airship Daily: some 300 zeppelins" in note and "Blimp Gazette: between 500 and 700 zeppelins" in note
    assert "differ" in answer.text


def test_same_fact_from_several_outlets_is_said_once(fake_index: Path) -> None:
    retriever = get_retriever(fake_index)
    settings = AnswerSettings(same_fact=0.5)  # the hash embedder's similarities are lower than a model's
    answer = answer_question(retriever, "Who led the Israeli side in the virtual meeting?", settings=settings)
    reported = [n for n in answer.notes if n.startswith("Reported by")]
    assert reported, answer.text
    # Every outlet named in the note has a quote behind it, but the text shows the fact once per group.
    for note in reported:
        named = note.removeprefix("Reported by ").rstrip(".").replace(" and ", ", ").split(", ")
        assert all(any(q.outlet == o for q in answer.quotes) for o in named)
    shown = [line for line in answer.text.splitlines() if line.startswith("> ") and not line.startswith("> _")]
    assert len(shown) < len(answer.quotes)


def test_article_text_cannot_inject_markdown_or_html(corpus_dir: Path, tmp_path: Path, write_article) -> None:  # type: ignore[no-untyped-def]
    from rag.embed import HashEmbedder
    from rag.index import build_index

    write_article(
        corpus_dir / "evil.txt",
        "The zeppelin count was 77 <script>alert(1)</script> [click](http://evil.example) **bold**.",
        title="Zeppelins <img src=x onerror=alert(1)>",
        outlet="Evil Times",
    )
    index = tmp_path / "idx"
    build_index([corpus_dir], index, embedder=HashEmbedder())
    answer = answer_question(get_retriever(index), "What was the zeppelin count?")
    assert any(q.outlet == "Evil Times" for q in answer.quotes)
    assert "<script>" not in answer.text and "<img" not in answer.text
    assert "](http" not in answer.text and "**bold**" not in answer.text


def test_abstains_on_words_the_index_never_uses(fake_index: Path) -> None:
    retriever = get_retriever(fake_index)
    answer = answer_question(retriever, "What is the recipe for sourdough bread with rye flour?")
    assert answer.abstained and answer.text == ABSTAIN_TEXT and not answer.quotes


def test_follow_up_uses_the_conversation(fake_index: Path) -> None:
    retriever = get_retriever(fake_index)
    alone = answer_question(retriever, "Where were they held?")
    followed = answer_question(
        retriever, "Where were they held?", history=("What was reported about the hostage negotiations?",)
    )
    assert any("negotiations in Cairo" in q.text for q in followed.quotes)
    assert not any("negotiations in Cairo" in q.text for q in alone.quotes)


def test_outlet_helpers_round_trip() -> None:
    outlets = ["JNS", "The Times of Israel"]
    mentions = find_outlets("According to JNS, how many tents?", outlets)
    assert [m.outlet for m in mentions] == ["JNS"]
    assert strip_outlet_phrases("According to JNS, how many tents?", mentions) == "how many tents?"
    assert outlet_key("the Times of Israel") == outlet_key("The Times Of Israel")


def _confidences(retriever: Retriever) -> tuple[list[float], list[float]]:
    answerable, unanswerable = [], []
    settings = AnswerSettings()
    for line in DEV_QA.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        question = row["question"]
        mentions = find_outlets(question, retriever.outlets)
        outlets = [m.outlet for m in mentions] or None
        question = strip_outlet_phrases(question, mentions) if mentions else question
        passages = retriever.search(question, k=settings.passages, history=row["history"], outlets=outlets)
        value = confidence(retriever, question, score_sentences(retriever, question, passages, row["history"]))
        (answerable if row["answer_groups"] else unanswerable).append(value)
    return answerable, unanswerable


@pytest.mark.slow
def test_abstain_threshold_is_calibrated_on_the_dev_questions(real_index: Path) -> None:
    """How ABSTAIN_THRESHOLD was chosen: on our own questions about the seeds (tests/data/seed_dev.jsonl,
    33 answerable, 12 not), the confidence of every answerable question is above every unanswerable
    one, and the threshold sits in the middle of that gap (rounded to 0.05), so that it errs on
    neither side."""
    from rag.answer import ABSTAIN_THRESHOLD

    answerable, unanswerable = _confidences(get_retriever(real_index))
    low, high = max(unanswerable), min(answerable)
    assert low < high, f"no gap: unanswerable up to {low:.3f}, answerable from {high:.3f}"
    assert low < ABSTAIN_THRESHOLD < high
    assert abs(ABSTAIN_THRESHOLD - (low + high) / 2) <= 0.05


@pytest.mark.slow
def test_real_model_answers_and_abstains(real_index: Path) -> None:
    retriever = get_retriever(real_index)
    lead = answer_question(retriever, "Who led the American side in the virtual meeting?")
    assert any("Sullivan" in q.text for q in lead.quotes)
    _verbatim(retriever, lead.quotes)
    follow = answer_question(retriever, "And who represented the Israeli side?", history=("Who led the US side?",))
    assert any("Dermer" in q.text for q in follow.quotes)
    assert answer_question(retriever, "Who won the 2022 FIFA World Cup?").abstained
    fighters = answer_question(retriever, "How many Hamas fighters are believed to be in Rafah?")
    assert {"JNS", "All Israel News"} <= {q.outlet for q in fighters.quotes}
    assert any("differ" in n for n in fighters.notes)
