"""Extractive answers: the sentences of the retrieved passages that answer the question, quoted
verbatim and attributed, grouped by outlet; agreement said once, differing figures side by side.

No language model: sentences are scored by embedding similarity to the question (and to the
question read with the conversation before it), by the question's key terms they contain,
and by whether they carry the kind of thing asked for (a number for "how many").
"""

from __future__ import annotations

import html
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.lexical import tokenize
from rag.outlets import find_outlets, outlet_key, strip_outlet_phrases
from rag.retrieve import SENTENCE_VECTORS, Retriever, clean_query
from rag.sentences import sentence_spans
from rag.types import Answer, Passage, Quote

# Chosen on tests/data/seed_dev.jsonl (our own questions, answerable and not): the midpoint of the
# gap between the confidence of answerable and unanswerable questions; tests/test_answer.py re-derives it.
ABSTAIN_THRESHOLD = 0.30

ABSTAIN_TEXT = "The articles in the index do not answer this question."


@dataclass(frozen=True)
class AnswerSettings:
    passages: int = 8  # passages retrieved to pick sentences from
    max_quotes: int = 5
    relative_cut: float = 0.75  # a sentence is quoted if it scores this share of the best one
    outlet_cut: float = 0.70  # ...or is the best of its outlet and scores this share of the best
    same_fact: float = 0.80  # embedding similarity above which two outlets' sentences are one fact
    abstain_threshold: float = ABSTAIN_THRESHOLD
    coverage_weight: float = 0.30  # confidence lost per share of question terms the index never uses
    dense_weight: float = 0.60
    lexical_weight: float = 0.30
    cue_weight: float = 0.20  # added for the kind of thing asked for, taken away without it
    rank_weight: float = 0.05  # the passage's retrieval rank


@dataclass(frozen=True)
class ScoredSentence:
    passage: Passage
    start: int
    end: int
    text: str
    score: float
    vector: np.ndarray


_NUMBER_WORDS = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
    r"hundred|thousand|million|billion|dozens?|half|quarter|three-quarters|majority"
)
_NUMBER = re.compile(rf"\d[\d,.]*|\b(?:{_NUMBER_WORDS})\b", re.IGNORECASE)
_DURATION = re.compile(
    rf"\b(?:\d[\d,.]*|{_NUMBER_WORDS}|a|an)[\s-]+(?:minutes?|hours?|days?|weeks?|months?|years?)\b", re.IGNORECASE
)
_NAME = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+\b")
_PLACE_OR_DATE = re.compile(
    r"\b(?:in|at|on|from)\s+[A-Z][a-z]+|\b(?:January|February|March|April|May|June|July|August|September|"
    r"October|November|December|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b|\b(19|20)\d\d\b"
)


def _cue(question: str, sentence: str) -> float | None:
    """For a question that asks for a kind of thing (a number, a duration, a name, a place or
    time): 1 when the sentence holds one, else 0. None when the question asks for no kind."""
    q = question.lower()
    if re.search(r"\bhow (long|soon)\b", q):
        return 1.0 if _DURATION.search(sentence) else 0.0
    if re.search(r"\bhow (many|much)\b|\bwhat (share|number|percentage|proportion)\b|\bhow large\b", q):
        return 1.0 if _NUMBER.search(sentence) else 0.0
    if re.search(r"\bwho\b", q):
        return 1.0 if _NAME.search(sentence) else 0.0
    if re.search(r"\b(where|when)\b", q):
        return 1.0 if _PLACE_OR_DATE.search(sentence) else 0.0
    return None


def score_sentences(
    retriever: Retriever,
    question: str,
    passages: Sequence[Passage],
    history: Sequence[str] = (),
    settings: AnswerSettings | None = None,
) -> list[ScoredSentence]:
    """Every sentence of the passages, scored against the question, best first, each once."""
    s = settings or AnswerSettings()
    seen: set[tuple[str, int, int]] = set()
    keys: list[tuple[str, int, int]] = []
    spans: list[tuple[Passage, int, int, str]] = []
    for passage in passages:
        doc = retriever.stored.documents[passage.doc_id]
        for span in sentence_spans(doc.text, passage.start, passage.end):
            key = (passage.doc_id, span.start, span.end)
            text = doc.text[span.start : span.end]
            if key in seen or len(re.findall(r"\w+", text)) < 4:
                continue
            seen.add(key)
            keys.append(key)
            spans.append((passage, span.start, span.end, text))
    if not spans:
        return []
    vectors = SENTENCE_VECTORS.get(retriever.embedder, keys, [t for *_, t in spans])
    context = " ".join(history[-2:])
    queries = [question] + ([f"{context} {question}"] if context else [])
    query_vectors = retriever.embedder.encode(queries)
    dense = vectors @ query_vectors.T  # [sentences x queries]
    dense_score = dense[:, 0] if dense.shape[1] == 1 else np.maximum(dense[:, 0], 0.9 * dense[:, 1])

    q_terms = set(tokenize(question))
    h_terms = set(tokenize(context)) - q_terms
    # Rare terms count more: document frequency over the candidate sentences themselves.
    sentence_terms = [set(tokenize(t)) for *_, t in spans]
    df: dict[str, int] = {}
    for terms in sentence_terms:
        for term in terms:
            df[term] = df.get(term, 0) + 1
    n = len(spans)

    def idf(term: str) -> float:
        return float(np.log(1 + n / (1 + df.get(term, 0))))

    # A short follow-up ("Where were they held?") leans on the conversation's terms.
    h_weight = 1.0 if len(q_terms) <= 2 else 0.5
    q_mass = sum(idf(t) for t in q_terms) + h_weight * sum(idf(t) for t in h_terms) or 1.0
    rank_of = {p.chunk_id: i for i, p in enumerate(passages)}
    scored: list[ScoredSentence] = []
    for (passage, start, end, text), terms, d in zip(spans, sentence_terms, dense_score, strict=True):
        lexical = (sum(idf(t) for t in q_terms & terms) + h_weight * sum(idf(t) for t in h_terms & terms)) / q_mass
        cue = _cue(question, text)
        score = (
            s.dense_weight * float(d)
            + s.lexical_weight * lexical
            + (s.cue_weight * (cue - 0.5) if cue is not None else 0.0)
            + s.rank_weight / (1 + rank_of.get(passage.chunk_id, len(passages)))
        )
        scored.append(ScoredSentence(passage, start, end, text, score, vectors[len(scored)]))
    scored.sort(key=lambda x: -x.score)
    return scored


def answer_question(
    retriever: Retriever,
    question: str,
    history: Sequence[str] = (),
    outlets: Sequence[str] | None = None,
    settings: AnswerSettings | None = None,
) -> Answer:
    s = settings or AnswerSettings()
    question = clean_query(question)
    history = tuple(h for h in (clean_query(h, allow_empty=True) for h in history) if h)
    mentions = find_outlets(question, retriever.outlets)
    search_question = question
    if mentions:
        named = [m.outlet for m in mentions]
        if outlets is not None:
            allowed = {outlet_key(o) for o in outlets}
            named = [o for o in named if outlet_key(o) in allowed] or list(outlets)
        outlets = named
        search_question = strip_outlet_phrases(question, mentions)
    passages = retriever.search(search_question, k=s.passages, history=history, outlets=outlets)
    scored = score_sentences(retriever, search_question, passages, history, s)
    if not scored or confidence(retriever, search_question, scored, s) < s.abstain_threshold:
        return Answer(text=ABSTAIN_TEXT, passages=tuple(passages), abstained=True)
    chosen = _choose(scored, s)
    return _compose(question, chosen, passages, s)


def term_coverage(retriever: Retriever, question: str) -> float:
    """Share of the question's terms that occur anywhere in the index: "Who won the FIFA World
    Cup?" asks about words the articles never use."""
    terms = tokenize(question)
    if not terms:
        return 1.0
    return sum(1 for t in terms if retriever.stored.lexical.has_term(t)) / len(terms)


def confidence(
    retriever: Retriever, question: str, scored: Sequence[ScoredSentence], settings: AnswerSettings | None = None
) -> float:
    """How sure we are that the articles answer: the best sentence's score, less what the
    question asks about that the index has never seen."""
    s = settings or AnswerSettings()
    if not scored:
        return 0.0
    return scored[0].score - s.coverage_weight * (1.0 - term_coverage(retriever, question))


def _choose(scored: list[ScoredSentence], s: AnswerSettings) -> list[ScoredSentence]:
    best = scored[0].score
    chosen: list[ScoredSentence] = []
    for x in scored:
        if x.score < s.relative_cut * best or len(chosen) >= s.max_quotes:
            break
        # An outlet printing the same sentence twice (standfirst and body) is quoted once.
        if not any(
            outlet_key(c.passage.outlet) == outlet_key(x.passage.outlet) and float(c.vector @ x.vector) >= 0.95
            for c in chosen
        ):
            chosen.append(x)
    have = {outlet_key(x.passage.outlet) for x in chosen}
    # The best sentence of each other outlet that is close: so that outlets can be compared.
    for x in scored:
        key = outlet_key(x.passage.outlet)
        if key not in have and x.score >= s.outlet_cut * best and x.score >= s.abstain_threshold:
            chosen.append(x)
            have.add(key)
    return chosen


def _figures(text: str) -> set[str]:
    return {m.group().rstrip(".,").lower() for m in _NUMBER.finditer(text)}


def _compose(question: str, chosen: list[ScoredSentence], passages: Sequence[Passage], s: AnswerSettings) -> Answer:
    # Group near-identical facts across outlets: one quote shown, every outlet named.
    groups: list[list[ScoredSentence]] = []
    for x in chosen:
        for group in groups:
            head = group[0]
            if (
                outlet_key(head.passage.outlet) != outlet_key(x.passage.outlet)
                and float(head.vector @ x.vector) >= s.same_fact
                and _figures(head.text) == _figures(x.text)
            ):
                group.append(x)
                break
        else:
            groups.append([x])

    lines: list[str] = []
    notes: list[str] = []
    quotes: list[Quote] = []
    for group in groups:
        for x in group:
            quotes.append(
                Quote(
                    text=x.text,
                    outlet=x.passage.outlet,
                    title=x.passage.title,
                    source=x.passage.source,
                    start=x.start,
                    end=x.end,
                    doc_id=x.passage.doc_id,
                    score=round(x.score, 4),
                )
            )
    by_outlet: OrderedDict[str, list[list[ScoredSentence]]] = OrderedDict()
    for group in groups:
        by_outlet.setdefault(group[0].passage.outlet, []).append(group)
    for outlet, outlet_groups in by_outlet.items():
        title = outlet_groups[0][0].passage.title
        lines.append(f"**{md_literal(outlet)}** — *{md_literal(title)}*")
        for group in outlet_groups:
            lines.append(f"> {md_literal(group[0].text)}")
            others = list(dict.fromkeys(x.passage.outlet for x in group))
            if len(others) > 1:
                note = f"Reported by {_join(others)}."
                lines.append(f">\n> _{note}_")
                notes.append(note)
        lines.append("")
    differ = _differing_figures(question, groups)
    if differ:
        lines.append(f"**The outlets' figures differ:** {differ}")
        notes.append(f"The outlets' figures differ: {differ}")
    return Answer(
        text="\n".join(lines).strip(),
        quotes=tuple(quotes),
        passages=tuple(passages),
        abstained=False,
        notes=tuple(notes),
    )


# A figure with what it counts: "some 3,000 fighters", "between 4,000 and 8,000 operatives".
_FIGURE = re.compile(
    r"(?:(?:between|some|about|around|over|more than|at least|nearly|almost)\s+)?"
    r"\d[\d,.]*(?:\s*(?:and|to|-|–)\s*\d[\d,.]*)?(?:\s+(?:million|billion|thousand))?(?:\s+[A-Za-z][\w-]*)?"
)
_NOT_A_COUNT = re.compile(r"^(?:19|20)\d\d$|^\d{1,2}$")  # years and day numbers are not what differs


def _differing_figures(question: str, groups: list[list[ScoredSentence]]) -> str:
    """'JNS: some 3,000 fighters; All Israel News: between 4,000 and 8,000 operatives' when a
    how-many question gets different figures from different outlets."""
    if _cue(question, "1") != 1.0 or _cue(question, "no figure") != 0.0:
        return ""  # only for questions that ask for a number
    asked = re.search(
        r"\bhow (?:many|much)\s+((?:[\w-]+\s+){0,2}?[\w-]+?)(?:\s+(?:are|is|were|was|do|does|did|have|has)\b|\?|$)",
        question.lower(),
    )
    counted = set(tokenize(asked.group(1))) if asked else set()
    best = groups[0][0].score if groups else 0.0
    per_outlet: OrderedDict[str, tuple[bool, float, str]] = OrderedDict()
    for group in groups:
        head = group[0]
        for match in _FIGURE.finditer(head.text):
            figure = match.group().strip()
            digits = re.sub(r"\D", "", figure.split()[-1] if figure.split()[-1][0].isdigit() else figure)
            if _NOT_A_COUNT.match(digits or figure):
                continue
            # The figure counts what was asked about ("3,000 fighters"), or its sentence is a top answer.
            names_it = bool(counted & set(tokenize(figure)))
            if not names_it and head.score < 0.9 * best:
                continue
            candidate = (names_it, head.score, figure)
            if head.passage.outlet not in per_outlet or candidate[:2] > per_outlet[head.passage.outlet][:2]:
                per_outlet[head.passage.outlet] = candidate
            break
    if len(per_outlet) < 2:
        return ""
    numbers = {re.sub(r"\D", "", f) for _, _, f in per_outlet.values()}
    if len(numbers) < 2:
        return ""
    return "; ".join(f"{md_literal(o)}: {md_literal(f)}" for o, (_, _, f) in per_outlet.items())


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|~])")


def md_literal(text: object) -> str:
    """Article text as literal markdown: no HTML, links, emphasis, lists or headings can come from a source."""
    flat = re.sub(r"\s+", " ", str(text)).strip()
    flat = _MD_SPECIAL.sub(r"\\\1", flat)
    # A list marker only counts at the start: "1. ..." or "- ..." is not a list; "zebra-striped" stays.
    flat = re.sub(r"^(\d+)\.", r"\1\\.", flat)
    flat = re.sub(r"^([-+])", r"\\\1", flat)
    return html.escape(flat, quote=False)
