"""Extractive answers: the sentences of the retrieved passages that answer the question, quoted
verbatim and attributed, grouped by outlet; agreement said once, differing figures side by side.

No language model: sentences are scored by embedding similarity to the question (and to the
question read with the conversation before it), by the question's key terms they contain,
and by whether they carry the kind of thing asked for (a number for "how many").
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.lexical import tokenize
from rag.outlets import find_outlets, outlet_key, strip_outlet_phrases
from rag.retrieve import Retriever, clean_query
from rag.sentences import sentence_spans
from rag.types import Answer, Passage, Quote

# Chosen on tests/data/abstain_calibration.jsonl: the midpoint of the widest gap between the
# best sentence scores of answerable and unanswerable questions (tests/test_answer.py re-derives it).
ABSTAIN_THRESHOLD = 0.40

ABSTAIN_TEXT = "The articles in the index do not answer this question."


@dataclass(frozen=True)
class AnswerSettings:
    passages: int = 8  # passages retrieved to pick sentences from
    max_quotes: int = 5
    relative_cut: float = 0.75  # a sentence is quoted if it scores this share of the best one
    outlet_cut: float = 0.70  # ...or is the best of its outlet and scores this share of the best
    same_fact: float = 0.80  # embedding similarity above which two outlets' sentences are one fact
    abstain_threshold: float = ABSTAIN_THRESHOLD
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


class _SentenceVectors:
    """Sentence embeddings, cached by (document, offsets): the same articles come back often."""

    def __init__(self, capacity: int = 20_000) -> None:
        self._cache: OrderedDict[tuple[str, str, int, int], np.ndarray] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, retriever: Retriever, spans: list[tuple[str, int, int]], texts: list[str]) -> np.ndarray:
        # Keyed by model too: two indexes of the same articles may use different models.
        model = retriever.embedder.name
        keys = [(model, *span) for span in spans]
        with self._lock:
            missing = [i for i, key in enumerate(keys) if key not in self._cache]
        if missing:
            fresh = retriever.embedder.encode([texts[i] for i in missing])
            with self._lock:
                for i, vector in zip(missing, fresh, strict=True):
                    self._cache[keys[i]] = vector
                while len(self._cache) > self._capacity:
                    self._cache.popitem(last=False)
        with self._lock:
            out = np.stack([self._cache[key] for key in keys]) if keys else np.zeros((0, 1), np.float32)
        return out


_VECTORS = _SentenceVectors()


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
    vectors = _VECTORS.get(retriever, keys, [t for *_, t in spans])
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
    if not scored or scored[0].score < s.abstain_threshold:
        return Answer(text=ABSTAIN_TEXT, passages=tuple(passages), abstained=True)
    chosen = _choose(scored, s)
    return _compose(chosen, passages, s)


def _choose(scored: list[ScoredSentence], s: AnswerSettings) -> list[ScoredSentence]:
    best = scored[0].score
    chosen = [x for x in scored if x.score >= s.relative_cut * best][: s.max_quotes]
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


def _compose(chosen: list[ScoredSentence], passages: Sequence[Passage], s: AnswerSettings) -> Answer:
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
        lines.append(f"**{_md(outlet)}** — *{_md(title)}*")
        for group in outlet_groups:
            lines.append(f"> {_md(group[0].text)}")
            others = list(dict.fromkeys(x.passage.outlet for x in group))
            if len(others) > 1:
                note = f"Reported by {_join(others)}."
                lines.append(f">\n> _{note}_")
                notes.append(note)
        lines.append("")
    differ = _differing_figures(groups)
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


def _differing_figures(groups: list[list[ScoredSentence]]) -> str:
    """'JNS: 3,000; All Israel News: 4,000, 8,000' when outlets quote different numbers."""
    per_outlet: OrderedDict[str, list[str]] = OrderedDict()
    for group in groups:
        head = group[0]
        numbers = [m.group().rstrip(".,") for m in re.finditer(r"\d[\d,.]*\d|\d", head.text)]
        if numbers:
            per_outlet.setdefault(head.passage.outlet, [])
            for n in numbers:
                if n not in per_outlet[head.passage.outlet]:
                    per_outlet[head.passage.outlet].append(n)
    if len(per_outlet) < 2:
        return ""
    sets = [frozenset(v) for v in per_outlet.values()]
    if all(x == sets[0] for x in sets):
        return ""
    return "; ".join(f"{_md(o)}: {', '.join(v)}" for o, v in per_outlet.items())


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _md(text: str) -> str:
    """Article text as literal markdown: no links, emphasis or HTML can come from a source."""
    text = text.replace("\n", " ")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_{}\[\]()#+!|~])", r"\\\1", text)
