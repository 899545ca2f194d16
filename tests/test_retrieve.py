"""rag/retrieve.py: hybrid search results, filters, de-duplication, outlet balance, query checks,
conversation history; and, marked slow, the real model on the bundled corpus."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from rag.chunk import ChunkSettings
from rag.embed import HashEmbedder
from rag.errors import IndexMismatchError, QueryError
from rag.index import BuildSettings, build_index
from rag.retrieve import MAX_QUERY_CHARS, Retriever, RetrieveSettings, get_retriever
from rag.store import load_index

if TYPE_CHECKING:
    from conftest import CountingEmbedder

OUTLETS = {"JNS", "The Times of Israel", "All Israel News", "The Jerusalem Post"}


def header(path: str | Path) -> dict[str, str]:
    """Title and Outlet from a corpus file's header block."""
    meta = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        meta[key.strip().lower()] = value.strip()
    return meta


def build(sources: Path, index_dir: Path) -> Retriever:
    build_index([sources], index_dir, embedder=HashEmbedder())
    return get_retriever(index_dir)


def test_passages_carry_attribution_and_verbatim_offsets(fake_index: Path) -> None:
    retriever = get_retriever(fake_index)
    passages = retriever.search("How many Hamas fighters are believed to be in Rafah?", k=8)
    assert len(passages) == 8
    assert len({p.chunk_id for p in passages}) == 8
    for p in passages:
        doc = retriever.stored.documents[p.doc_id]
        assert doc.text[p.start : p.end] == p.text and p.text.strip()
        meta = header(p.source)
        assert (p.outlet, p.title) == (meta["outlet"], meta["title"])
        assert p.text in Path(p.source).read_text(encoding="utf-8")
        assert p.score > 0 and p.page is None
    assert {p.outlet for p in passages} == OUTLETS


def test_k_bounds(fake_index: Path) -> None:
    retriever = get_retriever(fake_index)
    assert retriever.search("Rafah", k=0) == []
    everything = retriever.search("Rafah", k=10_000)
    assert 0 < len(everything) <= retriever.stored.size


def test_outlet_filter(fake_index: Path) -> None:
    retriever = get_retriever(fake_index)
    for outlets, expected in (
        (["JNS"], {"JNS"}),
        (["times of israel"], {"The Times of Israel"}),  # named loosely
        (["The Jerusalem Post", "All Israel News"], {"The Jerusalem Post", "All Israel News"}),
    ):
        passages = retriever.search("Who led the American side of the meeting?", k=6, outlets=outlets)
        assert passages and {p.outlet for p in passages} <= expected
    both = retriever.search("Who led the American side of the meeting?", k=6, outlets=["JNS", "The Jerusalem Post"])
    assert {p.outlet for p in both} == {"JNS", "The Jerusalem Post"}


def test_unknown_outlet_is_a_clear_error(fake_index: Path) -> None:
    with pytest.raises(QueryError) as caught:
        get_retriever(fake_index).search("Rafah", outlets=["The Daily Planet"])
    message = str(caught.value)
    assert "The Daily Planet" in message and "JNS" in message and "\n" not in message


@pytest.mark.parametrize("question", ["", "   \n\t ", "?!...", "¿¡—…", "\x00\x01\x02", "?? !! --"])
def test_question_without_words_is_refused(fake_index: Path, question: str) -> None:
    with pytest.raises(QueryError, match="empty"):
        get_retriever(fake_index).search(question)


def test_question_that_is_not_text_is_refused(fake_index: Path) -> None:
    with pytest.raises(QueryError):
        get_retriever(fake_index).search(None)  # type: ignore[arg-type]


def test_huge_question_is_truncated_and_answered(fake_index: Path, embedder: CountingEmbedder) -> None:
    retriever = Retriever(load_index(fake_index), embedder)
    question = "How many tents did Israel order from China for Rafah? " * 2000
    assert len(question) > 100_000
    passages = retriever.search(question, k=5)
    assert len(passages) == 5 and any("40,000 tents" in p.text for p in passages)
    assert embedder.texts and all(len(t) <= MAX_QUERY_CHARS for t in embedder.texts)


def test_near_duplicate_passages_appear_once(tmp_path: Path, write_article: Callable[..., Path]) -> None:
    """Two outlets run the same wire paragraph (one lightly edited): it is shown once."""
    shared = (
        "The wire service statement said the glacier monitoring station on Mount Kessel recorded its lowest ice "
        "volume since measurements began in 1962. Scientists at the station said meltwater runoff had doubled over "
        "the past decade, and that the glacier tongue had retreated by almost four hundred metres. The station "
        "chief, Ilse Varga, said the findings would be presented to the regional parliament in June."
    )
    filler = [
        "Hikers reported a series of unusual rockfalls near the northern trail this spring, and the mountain guides "
        "association closed two of its most popular routes for the rest of the season as a precaution, citing loose "
        "scree, collapsing snow bridges and the cost of rescue flights that insurers no longer want to cover, "
        "although the hut wardens, who depend on the hikers, asked the association to reopen at least one route.",
        "The tourism office expects noticeably fewer summer visitors in the upper valley this year, and several "
        "family-run guesthouses along the lake have already cut their opening hours, cancelled group bookings and "
        "postponed repairs until the regional government decides on the compensation fund proposed in April, "
        "which the opposition calls too small and the chamber of commerce calls too slow to help anyone this year.",
        "Farmers in the lower valley have long depended on a steady flow of summer meltwater to irrigate orchards "
        "and vineyards, and the cooperative board warned at its spring assembly that the old canals, sluices and "
        "reservoirs were never designed for the sudden floods followed by long dry spells seen in recent years, "
        "and that the repairs needed would cost more than the cooperative members could raise on their own.",
        "Irrigation cooperatives from five municipalities plan an emergency meeting in the district capital next "
        "week, where they will ask for drought subsidies, a moratorium on new water permits for ski resorts and a "
        "study of how the canals could store more of the spring runoff for the hot weeks of late summer, when the "
        "rivers run low, the wells dry up and the orchards need water most, as they did in the drought of 2022.",
    ]
    corpus = tmp_path / "corpus"
    write_article(
        corpus / "a.txt", f"{filler[0]}\n\n{shared}\n\n{filler[1]}", title="Glacier at record low", outlet="North Wire"
    )
    edited = shared.replace("in June", "in early June")
    write_article(
        corpus / "b.txt", f"{filler[2]}\n\n{edited}\n\n{filler[3]}", title="Kessel warns on melt", outlet="Valley Times"
    )
    build(corpus, tmp_path / "index")
    stored = load_index(tmp_path / "index")
    copies = [c.text for c in map(stored.chunk, stored.chunk_ids()) if "Mount Kessel recorded" in c.text]
    assert len(copies) == 2 and copies[0] != copies[1]  # both copies are indexed, as passages of their own
    assert all(c.startswith("The wire service") and c.endswith("June.") for c in copies)

    query = "glacier monitoring station Mount Kessel lowest ice volume"
    passages = Retriever(stored, HashEmbedder()).search(query, k=5)
    assert sum("Mount Kessel recorded" in p.text for p in passages) == 1
    assert len(passages) == 5  # the others still fill the list
    # Without de-duplication both copies would be shown: the check above is not vacuous.
    no_dedup = Retriever(stored, HashEmbedder(), RetrieveSettings(duplicate_jaccard=1.01)).search(query, k=5)
    assert sum("Mount Kessel recorded" in p.text for p in no_dedup) == 2


def test_one_outlet_does_not_crowd_out_the_others(tmp_path: Path, write_article: Callable[..., Path]) -> None:
    corpus = tmp_path / "corpus"
    for i in range(6):
        write_article(
            corpus / f"crowd{i}.txt",
            f"The Ashdod desalination plant expanded output again, report number {i}. Engineers at the "
            f"desalination plant in Ashdod said the desalination membranes were replaced in phase {i}. "
            "Desalination capacity at Ashdod keeps rising.",
            title=f"Desalination plant update {i}",
            outlet="Crowd Gazette",
        )
    write_article(
        corpus / "lone.txt",
        "The city council debated bus routes and school budgets. Separately, the Ashdod desalination plant will "
        "add a new membrane line next year. The football club lost on Sunday.",
        title="Regional roundup",
        outlet="Lone Herald",
    )
    build(corpus, tmp_path / "index")
    stored = load_index(tmp_path / "index")
    query = "Ashdod desalination plant"
    outlets = [p.outlet for p in Retriever(stored, HashEmbedder()).search(query, k=5)]
    assert "Lone Herald" in outlets and outlets.count("Crowd Gazette") == 4
    flat = RetrieveSettings(outlet_penalty=1.0, document_penalty=1.0)
    assert "Lone Herald" not in [p.outlet for p in Retriever(stored, HashEmbedder(), flat).search(query, k=5)]


def test_history_steers_a_follow_up(tmp_path: Path, write_article: Callable[..., Path]) -> None:
    corpus = tmp_path / "corpus"
    write_article(
        corpus / "berth.txt",
        "The quarantine berth in Port Vellmar opens next spring for grain freighters. "
        "The mayor, Jonas Pell, cut the ribbon at the harbour.",
        title="Port Vellmar berth opens",
        outlet="Harbour Courier",
    )
    write_article(
        corpus / "tunnel.txt",
        "The cycling tunnel under Lakeside station was approved by the council. "
        "The mayor, Ada Krohn, cut the ribbon at the station.",
        title="Lakeside tunnel approved",
        outlet="Lakeside Ledger",
    )
    retriever = build(corpus, tmp_path / "index")
    follow_up = "Who cut the ribbon there?"  # "there" leans on the conversation
    about_port = retriever.search(follow_up, k=1, history=("Tell me about the Port Vellmar quarantine berth.",))
    about_tunnel = retriever.search(follow_up, k=1, history=("What about the Lakeside cycling tunnel?",))
    assert "Jonas Pell" in about_port[0].text and "Ada Krohn" in about_tunnel[0].text
    # Only the last turns count, and a turn without words is ignored.
    old_turns = ("What about the Lakeside cycling tunnel?", "x", "Tell me about the Port Vellmar quarantine berth.")
    assert "Jonas Pell" in retriever.search(follow_up, k=1, history=old_turns)[0].text
    assert retriever.search(follow_up, history=("?!",)) == retriever.search(follow_up)


def test_history_changes_results_on_the_corpus(fake_index: Path) -> None:
    retriever = get_retriever(fake_index)
    follow_up = "And who represented the Israeli side?"
    alone = retriever.search(follow_up, k=5)
    with_history = retriever.search(follow_up, k=5, history=("Who led the US side in the virtual meeting on Rafah?",))
    assert [p.chunk_id for p in alone] != [p.chunk_id for p in with_history]


def test_get_retriever_reloads_only_when_the_manifest_changes(
    fake_index: Path, corpus_dir: Path, write_article: Callable[..., Path]
) -> None:
    first = get_retriever(fake_index)
    assert get_retriever(fake_index) is first
    build_index([corpus_dir], fake_index, embedder=HashEmbedder())  # nothing changed: no commit
    assert get_retriever(fake_index) is first

    write_article(corpus_dir / "new.txt", "The okapi reserve doubled in size.", title="Okapi", outlet="Zoo Times")
    build_index([corpus_dir], fake_index, embedder=HashEmbedder())
    second = get_retriever(fake_index)
    assert second is not first and second.generation == first.generation + 1
    assert second.search("okapi reserve", k=1)[0].outlet == "Zoo Times"
    assert "Zoo Times" not in first.outlets  # a holder of the old one keeps a consistent index


def test_model_mismatch_is_refused(fake_index: Path) -> None:
    with pytest.raises(IndexMismatchError, match="hash:256.*rag index --rebuild"):
        get_retriever(fake_index, model="all-MiniLM-L6-v2")
    with pytest.raises(IndexMismatchError, match="256-dimensional"):
        Retriever(load_index(fake_index), HashEmbedder(dimension=64))


def test_concurrent_searches_agree_with_serial_ones(fake_index: Path) -> None:
    retriever = get_retriever(fake_index)
    questions = [
        "How many tents did Israel order?",
        "Who led the American side?",
        "How many hostages remain in Gaza?",
        "Why was the Washington visit cancelled?",
    ]
    expected = {q: [p.chunk_id for p in retriever.search(q, k=5)] for q in questions}
    errors: list[BaseException] = []
    mismatches: list[str] = []

    def worker() -> None:
        try:
            for _ in range(25):
                for q in questions:
                    if [p.chunk_id for p in retriever.search(q, k=5)] != expected[q]:
                        mismatches.append(q)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and not mismatches


# --- the real model ----------------------------------------------------------------------------


def _contains(passage_text: str, figure: str) -> bool:
    return re.search(rf"(?<![\d,]){re.escape(figure)}(?![\d,])", passage_text) is not None


@pytest.mark.slow
def test_real_tents(real_index: Path) -> None:
    passages = get_retriever(real_index).search("How many tents did Israel order?", k=3)
    assert any(p.outlet == "JNS" and "40,000 tents" in p.text for p in passages)


@pytest.mark.slow
def test_real_fighters_from_two_outlets(real_index: Path) -> None:
    passages = get_retriever(real_index).search("How many Hamas fighters are believed to be in Rafah?", k=5)
    assert any(p.outlet == "JNS" and _contains(p.text, "3,000") for p in passages)
    assert any(p.outlet == "All Israel News" and _contains(p.text, "4,000") for p in passages)


@pytest.mark.slow
def test_real_follow_up_uses_history(real_index: Path) -> None:
    passages = get_retriever(real_index).search(
        "And who represented the Israeli side?",
        k=5,
        history=("Who led the US side in the virtual meeting on Rafah?",),
    )
    assert any("Dermer" in p.text for p in passages)


def test_hnsw_index_searches_and_filters(corpus_dir: Path, index_dir: Path) -> None:
    """Large indexes use an HNSW graph (here forced from the first chunk); filters still hold."""
    build_index([corpus_dir], index_dir, embedder=HashEmbedder(), settings=BuildSettings(hnsw_min_chunks=1))
    retriever = get_retriever(index_dir)
    assert retriever.stored.manifest.faiss_type.startswith("hnsw")
    assert any("40,000 tents" in p.text for p in retriever.search("40,000 tents from China", k=5))
    passages = retriever.search("Who led the American side?", k=5, outlets=["JNS"])
    assert len(passages) == 5 and {p.outlet for p in passages} == {"JNS"}


# -- dates (issue 11) ------------------------------------------------------------------------------

TRUCKS = "How many aid trucks did the port of Ashdod handle?"


def outlets_of(passages: list) -> list[str]:  # type: ignore[type-arg]
    return [p.outlet for p in passages]


def test_nothing_published_after_as_of_is_returned(dated_index: Path) -> None:
    retriever = get_retriever(dated_index)
    assert set(outlets_of(retriever.search(TRUCKS, k=10))) == {"Outlet A", "Outlet B", "Outlet C", "Outlet D"}
    for as_of, allowed in ((date(2024, 3, 15), {"A", "B", "D"}), (date(2024, 3, 5), {"A", "D"})):
        for question in (TRUCKS, "the latest on Ashdod", "trucks this week", "What happened in March?"):
            found = retriever.search(question, k=10, as_of=as_of)
            assert found and {o[-1] for o in outlets_of(found)} <= allowed, (question, as_of)


def test_since_until_bound_the_day_and_undated_rank_as_if_old(dated_index: Path) -> None:
    retriever = get_retriever(dated_index)
    found = retriever.search(TRUCKS, k=10, since=date(2024, 3, 5), until=date(2024, 3, 15))
    assert outlets_of(found) == ["Outlet B", "Outlet D"]  # the undated report is kept, after the dated one
    assert found[0].date == "2024-03-10" and found[1].date is None


def test_time_words_prefer_their_window_and_latest_prefers_the_newest(dated_index: Path) -> None:
    retriever = get_retriever(dated_index)
    as_of = date(2024, 3, 21)
    assert outlets_of(retriever.search(f"{TRUCKS[:-1]} this week?", k=1, as_of=as_of)) == ["Outlet C"]
    assert outlets_of(retriever.search(f"{TRUCKS[:-1]} on 1 March?", k=1, as_of=as_of)) == ["Outlet A"]
    assert outlets_of(retriever.search(f"What is the latest: {TRUCKS}", k=1, as_of=as_of)) == ["Outlet C"]
    # A soft window: what lies outside it is still found, after what lies inside.
    assert len(retriever.search(f"{TRUCKS[:-1]} this week?", k=10, as_of=as_of)) == 4


def test_time_words_with_no_article_in_their_window_are_searched_as_written(dated_index: Path) -> None:
    retriever = get_retriever(dated_index)
    q = retriever.analyse(f"{TRUCKS[:-1]} this week?", as_of=date(2025, 6, 1))
    assert not q.time.has_window and "none in the index" in q.window_label
    assert q.text == f"{TRUCKS[:-1]} this week?"
    assert len(retriever.search_query(q, k=10)) == 4


def test_feedback_finds_an_article_through_the_words_of_the_best_ones(
    tmp_path: Path, write_article: Callable[..., Path]
) -> None:
    """Pseudo-relevance feedback: the report that never says "drone strike" is found through the
    names the best match gives ("Zawahiri", "Kabul"); without feedback BM25 cannot reach it."""
    texts = {
        "a": "A US drone strike in Kabul killed the terrorist leader Ayman al-Zawahiri. Zawahiri led al Qaeda.",
        "b": "Zawahiri's death leaves al Qaeda without a leader. Zawahiri had hidden in Kabul for a year.",
        "c": "Farmers now use a drone to spray their crops.",
        "d": "Port workers went on strike for better pay.",
        "e": "The storm killed two people in the north.",
    }
    for name, body in texts.items():
        write_article(tmp_path / "src" / f"{name}.txt", body, title=f"Report {name}", outlet=f"Outlet {name}")
    stored = build(tmp_path / "src", tmp_path / "idx").stored
    lexical = RetrieveSettings(dense_weight=0.0, sentence_weight=0.0, prf_min_chunks=0, prf_docs=1)
    question = "Which terrorist was killed by a drone strike?"
    without = Retriever(stored, HashEmbedder(), replace(lexical, prf_weight=0.0)).search(question, k=10)
    found = Retriever(stored, HashEmbedder(), lexical).search(question, k=10)

    def score_of_b(passages: list) -> float:  # type: ignore[type-arg]
        return max((p.score for p in passages if p.outlet == "Outlet b"), default=0.0)

    assert score_of_b(without) == 0.0  # no word of the question: BM25 does not rank it
    assert score_of_b(found) > 0.0 and outlets_of(found)[0] == "Outlet a"
    # Below prf_min_chunks (a handful of articles, all on one story) there is no feedback.
    small = Retriever(stored, HashEmbedder(), replace(lexical, prf_min_chunks=1000)).search(question, k=10)
    assert score_of_b(small) == 0.0


TOPICS = (  # a round-up's other items, one paragraph each on its own subject, few words in common
    "Ferry timetables: northern lakes, winter service, two older boats lifted out for engine, hull, deck repairs; "
    "harbourmaster Lund expects fewer crossings, longer queues, higher fares until April.",
    "Orchestra season opener: symphony cycle, three premieres, conductor Maria Okafor calls rehearsals demanding; "
    "cellists, violinists, brass section rehearse nightly; tickets twenty euros.",
    "Bakery cooperative wins regional bread prize: rye loaf, sourdough culture older than seventeenth-century "
    "building; founders Piet, Anneke celebrate; queues outside shop Saturday.",
    "Basketball cup final: fans queue overnight, arena adds standing room, allocation sold out within minutes; "
    "coach Diallo praises defence; tipoff Sunday evening.",
)
PARAGRAPH_CHUNKS = BuildSettings(chunk=ChunkSettings(max_tokens=50, overlap_sentences=0))  # a chunk per paragraph


def test_article_focus_ranks_a_round_up_below_the_article_on_the_story(
    tmp_path: Path, write_article: Callable[..., Path]
) -> None:
    """A round-up that names the story in one of its items matches the question better, word for word,
    than the article about it; the round-up's low focus (its chunks on unrelated subjects) ranks it below."""
    item = (
        "Glacier watch: Kessel glacier monitoring station records lowest ice volume since 1962; "
        "glacier tongue retreats again, station glaciologists say."
    )
    story = (
        "Scientists on Mount Kessel said the ice had thinned faster than their models predicted, and that the "
        "monitoring station would report to the regional parliament in June on its lowest reading yet."
    )
    sources = tmp_path / "src"
    write_article(sources / "roundup.txt", "\n\n".join([TOPICS[0], item, *TOPICS[1:]]), title="In brief", outlet="A")
    write_article(sources / "story.txt", story, title="Kessel glacier at record low", outlet="B")
    build_index([sources], tmp_path / "idx", settings=PARAGRAPH_CHUNKS, embedder=HashEmbedder())
    stored = load_index(tmp_path / "idx")
    by_title = {stored.info(d).title: d for d in stored.documents}
    assert stored.info(by_title["In brief"]).chunks == 5
    question = "Which glacier monitoring station recorded its lowest ice volume?"

    shipped = Retriever(stored, HashEmbedder())
    assert shipped.focus(by_title["In brief"]) < 0.7 and shipped.focus(by_title["Kessel glacier at record low"]) == 1
    assert shipped.search(question, k=2)[0].title == "Kessel glacier at record low"
    unfocused = Retriever(stored, HashEmbedder(), RetrieveSettings(focus_threshold=0.0))
    assert unfocused.search(question, k=2)[0].title == "In brief"  # the check above is not vacuous


def test_many_articles_each_appear_once_few_may_repeat(tmp_path: Path, write_article: Callable[..., Path]) -> None:
    """One long article on the story has the best chunks. When the candidates hold at least
    distinct_articles_per_k x k articles, the top k hold k articles; among fewer, it may repeat."""
    long_story = [
        f"Desalination at Ashdod, part {i}: the Ashdod desalination plant replaced its desalination membranes "
        f"and the desalination output of Ashdod rose again, engineers at the Ashdod plant said in update {i}."
        for i in range(6)
    ]
    sources = tmp_path / "src"
    write_article(sources / "long.txt", "\n\n".join(long_story), title="Ashdod desalination", outlet="A")
    for i, topic in enumerate(TOPICS):
        body = f"{topic} Officials also mentioned the desalination plant at Ashdod."
        write_article(sources / f"other{i}.txt", body, title=f"Brief {i}", outlet="A")
    build_index([sources], tmp_path / "idx", settings=PARAGRAPH_CHUNKS, embedder=HashEmbedder())
    stored = load_index(tmp_path / "idx")
    assert len(stored.documents) == 5
    question = "What happened at the Ashdod desalination plant?"

    def articles(settings: RetrieveSettings, k: int) -> list[str]:
        return [p.doc_id for p in Retriever(stored, HashEmbedder(), settings).search(question, k=k)]

    # No discount for a second passage of one article: what takes each article once is the rule alone.
    distinct = RetrieveSettings(focus_threshold=0.0, document_penalty=1.0)
    assert distinct.distinct_articles_per_k == 2.0
    assert len(set(articles(distinct, 2))) == 2  # 5 articles >= 2 x 2
    repeated = articles(replace(distinct, distinct_articles_per_k=0.0), 2)
    assert len(set(repeated)) == 1  # without the rule, the long article's chunks take both places
    assert len(set(articles(distinct, 3))) < 3  # 5 articles < 2 x 3: the long article may repeat


def test_since_a_story_event_starts_the_window_on_the_first_day_an_article_names_it(
    tmp_path: Path, write_article: Callable[..., Path]
) -> None:
    sources = tmp_path / "src"
    reports = [
        ("a.txt", "2024-01-05", "Fighting closed the Rafah crossing to aid trucks for the whole week."),
        ("b.txt", "2024-02-10", "A ceasefire took hold in Gaza on Saturday after weeks of talks."),
        ("c.txt", "2024-02-20", "Since the ceasefire, 200 aid trucks a day have crossed into Gaza."),
        ("d.txt", "2024-03-01", "A later report on the ceasefire: aid trucks keep crossing into Gaza."),
    ]
    for name, day, body in reports:
        write_article(sources / name, body, title=f"Gaza report {name}", outlet=f"Outlet {name[0]}", date=day)
    build_index([sources], tmp_path / "idx", embedder=HashEmbedder())
    retriever = get_retriever(tmp_path / "idx")
    question = "How many aid trucks have crossed into Gaza since the ceasefire?"
    q = retriever.analyse(question, as_of=date(2024, 3, 5))
    assert q.time.since == date(2024, 2, 10) and q.time.explicit
    assert q.window_label == "Articles from 10 Feb to 5 Mar 2024 (the ceasefire first named on 10 Feb 2024)"
    assert "ceasefire" in q.text  # the event's words are searched for too
    # Asked before any article named it: no window; the article from before it ranks last, not gone.
    assert not retriever.analyse(question, as_of=date(2024, 2, 1)).time.has_window
    ranked = [p.outlet for p in retriever.search_query(q, k=4)]
    assert ranked[-1] == "Outlet a" and len(ranked) == 4
