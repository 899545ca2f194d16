"""The extractive composer: verbatim attributed quotes, agreement said once, figures side by side,
outlet-scoped questions, follow-ups, and an abstention threshold chosen on data."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.answer import (
    ABSTAIN_TEXT,
    MODEL_PATH,
    AnswerSettings,
    answer_question,
    load_model,
    score_sentences,
    term_coverage,
)
from rag.errors import QueryError
from rag.outlets import find_outlets, outlet_key, strip_outlet_phrases
from rag.retrieve import Retriever, get_retriever


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


def test_same_fact_from_several_outlets_is_said_once(tmp_path: Path, write_article) -> None:  # type: ignore[no-untyped-def]
    from rag.embed import HashEmbedder
    from rag.index import build_index

    sentence = "The zeppelin fleet was commanded by Captain Hugo Eckener during the crossing."
    # Different passages (retrieval keeps both), the same sentence in each.
    write_article(
        tmp_path / "src" / "a.txt",
        f"Crowds gathered at the mooring mast in New Jersey. {sentence}",
        title="Crossing",
        outlet="Airship Daily",
    )
    write_article(
        tmp_path / "src" / "b.txt",
        f"{sentence} The ship carried mail and forty passengers.",
        title="Atlantic crossing",
        outlet="Blimp Gazette",
    )
    write_article(
        tmp_path / "src" / "c.txt", "Light winds were forecast for Tuesday.", title="Weather", outlet="Almanac"
    )
    build_index([tmp_path / "src"], tmp_path / "idx", embedder=HashEmbedder())
    answer = answer_question(get_retriever(tmp_path / "idx"), "Who commanded the zeppelin fleet during the crossing?")
    # Default settings: two outlets' identical sentences are one fact, shown once, both outlets named.
    assert {q.outlet for q in answer.quotes} == {"Airship Daily", "Blimp Gazette"}
    assert any(
        n in answer.notes
        for n in ("Reported by Airship Daily and Blimp Gazette.", "Reported by Blimp Gazette and Airship Daily.")
    )
    shown = [line for line in answer.text.splitlines() if line.startswith("> ") and not line.startswith("> _")]
    assert len(shown) == 1 < len(answer.quotes)


def test_near_identical_sentences_of_two_outlets_are_one_fact_at_the_default_threshold(
    tmp_path: Path, write_article: Callable[..., Path]
) -> None:
    from rag.embed import HashEmbedder
    from rag.index import build_index

    commanded = "The zeppelin fleet was commanded by Captain Hugo Eckener during the crossing."
    led = "The zeppelin fleet was led by Captain Hugo Eckener during the crossing."  # the same fact, reworded
    other = "The zeppelin fleet was commanded by Captain Ernst Lehmann on the return flight."  # another fact
    vectors = HashEmbedder().encode([commanded, led, other])
    # The hash embedder puts the reworded sentence well above the default threshold of 0.80 without being
    # identical, and the other commander well below it.
    assert 0.9 < float(vectors[0] @ vectors[1]) < 0.95 and 0.65 < float(vectors[0] @ vectors[2]) < 0.72
    for name, body, outlet in (
        ("a.txt", f"Crowds gathered at the mooring mast in New Jersey. {commanded}", "Airship Daily"),
        ("b.txt", f"{led} The ship carried mail and forty passengers.", "Blimp Gazette"),
        ("c.txt", other, "Dirigible Times"),
    ):
        write_article(tmp_path / "src" / name, body, title=f"Crossing ({outlet})", outlet=outlet)
    build_index([tmp_path / "src"], tmp_path / "idx", embedder=HashEmbedder())
    # Every sentence quoted (no bars): only the default same-fact threshold decides what is grouped.
    settings = AnswerSettings(quote_bar=0.0, relative_cut=0.0, abstain_bar=-1.0, max_quotes=10)
    answer = answer_question(
        get_retriever(tmp_path / "idx"), "Who commanded the zeppelin fleet during the crossing?", settings=settings
    )
    assert {commanded, led, other} <= {q.text for q in answer.quotes}
    assert [n for n in answer.notes if n.startswith("Reported by")] in (
        ["Reported by Airship Daily and Blimp Gazette."],
        ["Reported by Blimp Gazette and Airship Daily."],
    )
    shown = [line[2:] for line in answer.text.splitlines() if line.startswith("> ") and not line.startswith("> _")]
    assert len({commanded, led} & set(shown)) == 1 and other in shown


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


def test_terms_the_index_never_uses_decide_abstention(fake_index: Path) -> None:
    """A question half about the articles and half about words they never use: its best sentence
    clears the bar on its own, the share of unknown terms takes it under."""
    retriever = get_retriever(fake_index)
    question = "How many tents did Israel order from the zorblax quinoa cooperative in Patagonia?"
    q = retriever.analyse(question)
    assert 0.5 < term_coverage(retriever, q) < 1.0  # tents, Israel, order ... are known; zorblax, quinoa are not
    best = score_sentences(retriever, q, retriever.search_query(q, k=8))[0].probability
    # The hash embedder's probabilities are not the model's: a bar the best sentence clears by 0.05.
    settings = AnswerSettings(abstain_bar=best - 0.05)
    answer = answer_question(retriever, question, settings=settings)
    assert answer.abstained and not answer.quotes and answer.text == ABSTAIN_TEXT
    unpenalised = answer_question(retriever, question, settings=replace(settings, coverage_weight=0.0))
    assert not unpenalised.abstained and unpenalised.quotes


def test_direct_answer_is_the_figure_not_a_number_word_inside_another_word(fake_index: Path) -> None:
    answer = answer_question(get_retriever(fake_index), "How many tents did Israel order from China?")
    assert answer.text.splitlines()[0].startswith("**Answer:** 40,000")


def test_follow_up_uses_the_conversation(fake_index: Path) -> None:
    retriever = get_retriever(fake_index)
    history = ("What was reported about the hostage negotiations?",)
    alone = retriever.analyse("Where were they held?")
    followed = retriever.analyse("Where were they held?", history)
    assert followed.follow_up and not alone.follow_up
    # The conversation brings the Cairo talks into the passages and the sentences scored.
    passages = retriever.search_query(followed, k=8)
    assert any("negotiations in Cairo" in p.text for p in passages)
    scored = score_sentences(retriever, followed, passages)
    assert any("negotiations in Cairo" in x.text for x in scored[:5])
    assert not any("negotiations in Cairo" in p.text for p in retriever.search_query(alone, k=3))


def test_self_contained_question_ignores_unrelated_history(fake_index: Path) -> None:
    retriever = get_retriever(fake_index)
    question = "How many tents did Israel order from China?"
    alone = answer_question(retriever, question)
    after = answer_question(retriever, question, history=("Who led the American side in the virtual meeting?",))
    assert [(q.outlet, q.start) for q in after.quotes] == [(q.outlet, q.start) for q in alone.quotes]
    assert after.text == alone.text


def test_outlet_filter_that_does_not_report_abstains_and_names_who_does(fake_index: Path) -> None:
    retriever = get_retriever(fake_index)
    question = "How many tents did Israel order from China?"

    def best(outlets: list[str] | None) -> float:
        q = retriever.analyse(question, outlets=outlets)
        return score_sentences(retriever, q, retriever.search_query(q, k=8))[0].probability

    # The hash embedder's probabilities are not the model's: put the bar between the two.
    everywhere, scoped = best(None), best(["All Israel News"])
    assert scoped < everywhere
    settings = AnswerSettings(abstain_bar=(everywhere + scoped) / 2, coverage_weight=0.0)
    answer = answer_question(retriever, question, outlets=["All Israel News"], settings=settings)
    assert answer.abstained and not answer.quotes
    assert answer.text.startswith("None of the ticked outlets (All Israel News) reports this")
    assert "JNS" in answer.text


def test_outlet_helpers_round_trip() -> None:
    outlets = ["JNS", "The Times of Israel"]
    mentions = find_outlets("According to JNS, how many tents?", outlets)
    assert [m.outlet for m in mentions] == ["JNS"]
    assert strip_outlet_phrases("According to JNS, how many tents?", mentions) == "how many tents?"
    assert outlet_key("the Times of Israel") == outlet_key("The Times Of Israel")


@pytest.mark.slow
def test_bars_come_from_the_model_file(real_index: Path) -> None:
    """The quote and abstention bars are the ones bench/train_answer.py chose and wrote."""
    model = load_model()
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    assert (model.quote_bar, model.relative_cut, model.abstain_bar) == (
        data["quote_bar"],
        data["relative_cut"],
        data["abstain_bar"],
    )
    retriever = get_retriever(real_index)
    answer = answer_question(retriever, "How many tents did Israel order from China?")
    assert answer.quotes and all(q.score >= model.quote_bar for q in answer.quotes)


@pytest.mark.slow
def test_real_model_answers_and_abstains(real_index: Path) -> None:
    retriever = get_retriever(real_index)
    lead = answer_question(retriever, "Who led the American side in the virtual meeting?")
    assert any("Sullivan" in q.text for q in lead.quotes)
    _verbatim(retriever, lead.quotes)
    follow = answer_question(retriever, "And who represented the Israeli side?", history=("Who led the US side?",))
    assert any("Dermer" in q.text for q in follow.quotes)
    assert answer_question(retriever, "What is the capital of Australia?").abstained


@pytest.mark.slow
def test_abstains_on_a_question_about_a_name_the_articles_never_mention(real_index: Path) -> None:
    assert answer_question(get_retriever(real_index), "Who won the 2022 FIFA World Cup?").abstained


SELF_CONTAINED = (
    "How many tents did Israel order from China?",
    "Who led the American side in the virtual meeting?",
    "How many Hamas fighters are believed to be in Rafah?",
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    question=st.sampled_from(SELF_CONTAINED),
    history=st.lists(
        st.one_of(
            st.text(min_size=1, max_size=60),
            st.sampled_from(["And where were they held?", "What about the civilians?", "Who is the port director?"]),
        ),
        max_size=3,
    ),
)
def test_self_contained_answer_does_not_depend_on_history(fake_index: Path, question: str, history: list[str]) -> None:
    """Whatever came before, a question that needs no conversation gets the answer it gets alone."""
    retriever = get_retriever(fake_index)
    try:
        with_history = answer_question(retriever, question, history=tuple(history))
    except QueryError:
        return  # a history that is not text is refused, never silently used
    alone = answer_question(retriever, question)
    assert with_history.text == alone.text
    assert [(q.doc_id, q.start, q.end) for q in with_history.quotes] == [
        (q.doc_id, q.start, q.end) for q in alone.quotes
    ]


# The six cases a reader reported in issue 8, on the real model. Those the answer does not get right
# yet are strict xfails: they fail the suite the day they start passing, so the marker is removed.


@pytest.mark.slow
def test_fighter_quotes_hold_fighter_figures(real_index: Path) -> None:
    fighters = answer_question(get_retriever(real_index), "How many Hamas fighters are in Rafah?")
    assert fighters.quotes and all(any(f in q.text for f in ("3,000", "4,000")) for q in fighters.quotes)


@pytest.mark.slow
def test_follow_up_about_civilians_quotes_civilian_figures(real_index: Path) -> None:
    civilians = answer_question(
        get_retriever(real_index),
        "And how many civilians are there?",
        history=("How many Hamas fighters are in Rafah?",),
    )
    assert civilians.quotes and "million" in civilians.quotes[0].text


@pytest.mark.slow
def test_ticked_outlet_without_the_figure_abstains(real_index: Path) -> None:
    post = answer_question(
        get_retriever(real_index), "How many Hamas fighters are in Rafah?", outlets=["The Jerusalem Post"]
    )
    assert post.abstained and not post.quotes
    assert post.text.startswith("None of the ticked outlets (The Jerusalem Post) reports this;")
    assert "All Israel News" in post.text  # who does: its "4,000 and 8,000 operatives"


@pytest.mark.slow
def test_self_contained_question_after_another_is_answered_as_alone(real_index: Path) -> None:
    retriever = get_retriever(real_index)
    alone = answer_question(retriever, "Who heads Israel's National Security Council?")
    after = answer_question(
        retriever, "Who heads Israel's National Security Council?", history=("How many tents did Israel order?",)
    )
    assert alone.quotes and [q.text for q in after.quotes] == [q.text for q in alone.quotes]


@pytest.mark.slow
def test_all_israel_news_is_quoted_with_the_sentence_naming_sullivan(real_index: Path) -> None:
    lead = answer_question(get_retriever(real_index), "Who led the American side?")
    assert lead.quotes
    assert all("Sullivan" in q.text for q in lead.quotes if q.outlet == "All Israel News")


def test_quote_opening_with_a_reference_carries_the_sentence_before(tmp_path: Path, write_article) -> None:  # type: ignore[no-untyped-def]
    from rag.answer import ScoredSentence, _context_before, candidates
    from rag.embed import HashEmbedder
    from rag.index import build_index

    body = "Captain Hugo Eckener commanded the zeppelin fleet. He said the crossing took four days."
    write_article(tmp_path / "src" / "a.txt", body, title="Crossing", outlet="Airship Daily")
    build_index([tmp_path / "src"], tmp_path / "idx", embedder=HashEmbedder())
    retriever = get_retriever(tmp_path / "idx")
    q = retriever.analyse("How long did the crossing take?")
    found = {c.text: c for c in candidates(retriever, retriever.search_query(q, k=3))}
    he = found["He said the crossing took four days."]
    context, start = _context_before(retriever, ScoredSentence(he, 1.0))
    assert context == "Captain Hugo Eckener commanded the zeppelin fleet."
    assert retriever.stored.documents[he.passage.doc_id].text[start : start + len(context)] == context
    plain = found["Captain Hugo Eckener commanded the zeppelin fleet."]
    assert _context_before(retriever, ScoredSentence(plain, 1.0)) == ("", -1)


def test_quotation_units_keep_a_quotation_with_its_speaker() -> None:
    from rag.answer import quotation_units
    from rag.sentences import sentence_spans

    text = (
        "He spoke first. “A major operation would be a mistake. It would cost lives,” Sullivan said. "
        "Then the talks ended.\n“This quote never closes. Nor here.\nA plain line ends it. "
        '"Straight quotes count. They close too," she said.'
    )
    spans = np.array([(s.start, s.end) for s in sentence_spans(text)])
    units = [text[spans[a, 0] : spans[b, 1]] for a, b in sorted(quotation_units(text, spans))]
    assert units == [
        "He spoke first.",
        "“A major operation would be a mistake. It would cost lives,” Sullivan said.",
        "Then the talks ended.",
        "“This quote never closes.",  # a paragraph break ends it: each sentence stays alone
        "Nor here.",
        "A plain line ends it.",
        '"Straight quotes count. They close too," she said.',
    ]
    # A quotation that does not close within max_sentences is not merged.
    assert sorted(quotation_units(text, spans, max_sentences=1)) == [(i, i) for i in range(len(spans))]


def test_a_quotation_over_two_sentences_is_one_verbatim_candidate(tmp_path: Path, write_article) -> None:  # type: ignore[no-untyped-def]
    from rag.answer import candidates
    from rag.embed import HashEmbedder
    from rag.index import build_index

    body = (
        "The minister visited the port on Monday.\n"
        "“The pier will be finished within two months. We have the ships,” the minister said.\n"
        "Trucks waited at the gate."
    )
    write_article(tmp_path / "src" / "a.txt", body, title="Port", outlet="Harbour News")
    build_index([tmp_path / "src"], tmp_path / "idx", embedder=HashEmbedder())
    retriever = get_retriever(tmp_path / "idx")
    q = retriever.analyse("How long will the pier take?")
    found = candidates(retriever, retriever.search_query(q, k=3))
    texts = [c.text for c in found]
    unit = "“The pier will be finished within two months. We have the ships,” the minister said."
    assert unit in texts and "We have the ships,” the minister said." not in texts
    c = found[texts.index(unit)]
    assert retriever.stored.documents[c.passage.doc_id].text[c.start : c.end] == unit
    assert abs(float(np.linalg.norm(c.vector)) - 1.0) < 1e-5
    answer = answer_question(retriever, q)
    _verbatim(retriever, answer.quotes)


def test_ticked_outlets_far_weaker_than_the_others_abstain_naming_who_reports_it(fake_index: Path) -> None:
    retriever = get_retriever(fake_index)
    question, ticked = "What is the state of the hostage negotiations?", ["The Jerusalem Post"]
    # scoped_share 0: the ticked outlet's best sentence is quoted, however weak.
    answered = answer_question(retriever, question, outlets=ticked, settings=AnswerSettings(scoped_share=0.0))
    assert not answered.abstained and {q.outlet for q in answered.quotes} == {"The Jerusalem Post"}
    # A share no scoped answer can reach: it abstains, saying the ticked outlet does not report it.
    refused = answer_question(retriever, question, outlets=ticked, settings=AnswerSettings(scoped_share=10.0))
    assert refused.abstained and not refused.quotes
    assert refused.text.startswith("None of the ticked outlets (The Jerusalem Post) reports this")


def test_whole_articles_make_the_rest_of_the_best_article_candidates(tmp_path: Path, write_article) -> None:  # type: ignore[no-untyped-def]
    from rag.answer import candidates
    from rag.embed import HashEmbedder
    from rag.index import build_index

    filler = "\n".join(f"Paragraph {i} describes the harbour cranes and the weather at dawn." for i in range(60))
    answer_line = "Ferries to Brindisi sail again from Thursday, officials said."
    body = f"The port reopened on Tuesday after the storm.\n{filler}\n{answer_line}"
    write_article(tmp_path / "src" / "a.txt", body, title="Port reopens", outlet="Harbour News")
    other = "Cranes were idle in another port.\n" + filler
    write_article(tmp_path / "src" / "b.txt", other, title="Idle", outlet="Other")
    build_index([tmp_path / "src"], tmp_path / "idx", embedder=HashEmbedder())
    retriever = get_retriever(tmp_path / "idx")
    q = retriever.analyse("When did the port reopen after the storm?")
    passages = retriever.search_query(q, k=1)
    article = retriever.stored.documents[passages[0].doc_id]
    assert article.title == "Port reopens" and answer_line not in passages[0].text  # the last chunk is not retrieved

    only_passage = {c.text for c in candidates(retriever, passages)}
    assert answer_line not in only_passage
    found = {c.text: c for c in candidates(retriever, passages, whole_articles=1)}
    assert only_passage <= set(found) and answer_line in found
    c = found[answer_line]
    assert article.text[c.start : c.end] == answer_line and c.rank == 0 and c.passage == passages[0]
    # Each sentence once, positions are the sentences' places in the article.
    assert len({(x.passage.doc_id, x.start) for x in found.values()}) == len(found)
    assert c.position == max(x.position for x in found.values())


def test_phrase_vectors_are_remembered_per_model() -> None:
    from rag.answer import _phrase_vectors

    class Counting:
        def __init__(self, name: str, sign: float) -> None:
            self.name, self.sign, self.encoded = name, sign, []  # type: ignore[var-annotated]

        def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
            self.encoded += texts
            return np.array([[self.sign * len(t), 1.0] for t in texts], np.float32)

    a, b = Counting("model-a", 1.0), Counting("model-b", -1.0)
    first = _phrase_vectors(a, ["fighters in", "civilians"])  # type: ignore[arg-type]
    again = _phrase_vectors(a, ["civilians", "fighters in", "hostages"])  # type: ignore[arg-type]
    assert a.encoded == ["fighters in", "civilians", "hostages"]  # each phrase embedded once
    assert np.array_equal(again[:2], first[::-1])
    other = _phrase_vectors(b, ["civilians"])  # type: ignore[arg-type]
    assert b.encoded == ["civilians"] and other[0, 0] == -again[0, 0]  # another model, its own vectors


def test_who_asks_for_a_person_not_a_lone_capitalised_word() -> None:
    from rag.answer import _slot_matches

    def names(text: str) -> list[str]:
        return [text[a:b] for a, b in _slot_matches("name", text, {"rafah", "american"})]

    assert names("Top American and Israeli officials met on Rafah.") == []  # a people, a place: no one
    assert names("It was led by National Security Advisor Jake Sullivan and Secretary of State Antony Blinken.") == [
        "National Security Advisor Jake Sullivan",
        "Secretary of State Antony Blinken",
    ]
    assert names("The talks were useful, Kirby said.") == ["Kirby"]
    assert names("The briefing was given by spokesperson Miller on Monday.") == ["spokesperson Miller"]
    # "where" still takes a lone place name
    assert [t[a:b] for t in ["Talks moved to Cairo."] for a, b in _slot_matches("place", t, set())] == ["Cairo"]


def test_how_long_is_answered_first_by_a_sentence_holding_a_duration(tmp_path: Path, write_article) -> None:  # type: ignore[no-untyped-def]
    from rag.embed import HashEmbedder
    from rag.index import build_index

    body = (
        "The harbour board meeting last week discussed the harbour board meeting schedule.\n"
        "Delegates said the session ran for three hours before a vote."
    )
    write_article(tmp_path / "src" / "a.txt", body, title="Board", outlet="Harbour News")
    build_index([tmp_path / "src"], tmp_path / "idx", embedder=HashEmbedder())
    retriever = get_retriever(tmp_path / "idx")
    question = "How long did the harbour board meeting last?"
    q = retriever.analyse(question)
    scored = score_sentences(retriever, q, retriever.search_query(q, k=3))
    assert "three hours" not in scored[0].text  # the closest sentence holds no duration
    settings = AnswerSettings(quote_bar=0.0, relative_cut=0.0, abstain_bar=0.0)
    answer = answer_question(retriever, question, settings=settings)
    assert answer.quotes and "three hours" in answer.quotes[0].text
    _verbatim(retriever, answer.quotes)
    # Other kinds keep the model's order: a "what" question quotes the closest sentence first.
    what = retriever.analyse("What did the harbour board meeting discuss?")
    closest = score_sentences(retriever, what, retriever.search_query(what, k=3))[0]
    assert answer_question(retriever, what, settings=settings).quotes[0].text == closest.text
