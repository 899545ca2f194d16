"""Extractive answers: the sentences of the retrieved passages that answer the question, quoted
verbatim and attributed; the direct answer first, then the quotes grouped by outlet.

No language model. Each candidate sentence gets a probability that it answers the question from a
logistic model over a few features (rag/answer_model.json, trained by bench/train_answer.py on
RealTime QA dev weeks and our own seed questions, week folds for the held-out check): how close it
is to the question and to the question's focus ("how many *fighters*"), by embedding and by word;
whether it holds the kind of thing asked for (a number, a name, a date) next to that focus; whether
it says something the question does not. A sentence is quoted only when it passes the bar on its
own; when none does, the answer abstains.
"""

from __future__ import annotations

import html
import json
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.dates import attribution
from rag.embed import Embedder
from rag.lexical import STOPWORDS, tokenize
from rag.outlets import outlet_key
from rag.query import Query
from rag.retrieve import Retriever
from rag.types import Answer, Passage, Quote

ABSTAIN_TEXT = "The articles in the index do not answer this question."
MODEL_PATH = Path(__file__).with_name("answer_model.json")


@dataclass(frozen=True)
class AnswerSettings:
    passages: int = 8  # passages retrieved to pick sentences from
    max_quotes: int = 5
    # A sentence is quoted when its probability of answering is at least `quote_bar` and at least
    # `relative_cut` of the best one's; the answer abstains when the best is under `abstain_bar`.
    # All three come from the model file, where bench/train_answer.py writes what it chose.
    quote_bar: float | None = None
    relative_cut: float | None = None
    abstain_bar: float | None = None
    coverage_weight: float = 0.5  # probability lost per share of question terms the index never uses
    same_fact: float = 0.80  # embedding similarity above which two outlets' sentences are one fact
    min_words: int = 4  # shorter lines (bylines, captions) are never quotes
    # Every sentence of the best this many articles is a candidate, not only the retrieved
    # passages' (see `candidates`). 3 from RealTime QA's held-out weeks and the seed files
    # (docs/benchmarks.md; bench/train_answer.py --whole-articles).
    whole_articles: int = 3
    # With outlets ticked or named, their best sentence must be at least this share of the best
    # any outlet has: a sentence far weaker than what other outlets print is "the best its outlet
    # has", not an answer ("1.3 million civilians" from the Post for "how many fighters?"). One
    # half, set a priori; on our seed files it made 2 unanswerable scoped questions abstain and no
    # answerable one (the closest, seed_dev's d-post-hostages, sits at 0.51).
    scoped_share: float = 0.5


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage, with its vector and where it sits."""

    passage: Passage
    rank: int  # the passage's retrieval rank
    start: int
    end: int
    text: str
    vector: np.ndarray
    position: int  # sentence number within its passage's article coverage (0 = first)


@dataclass(frozen=True)
class ScoredSentence:
    candidate: Candidate
    probability: float

    @property
    def passage(self) -> Passage:
        return self.candidate.passage

    @property
    def text(self) -> str:
        return self.candidate.text


# --- What a sentence must hold for each kind of question ---------------------------------------

_NUMBER_WORDS = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
    r"hundreds?|thousands?|millions?|billions?|dozens?|half|quarter|three-quarters|majority"
)
_NUMBER = re.compile(rf"\d[\d,.]*%?|\b(?:{_NUMBER_WORDS})\b", re.IGNORECASE)
_DURATION = re.compile(
    rf"\b(?:\d[\d,.]*|{_NUMBER_WORDS}|a|an|several|few)[\s-]+(?:minutes?|hours?|days?|weeks?|months?|years?)\b",
    re.IGNORECASE,
)
_MONTHS = r"January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = re.compile(
    rf"\b(?:{_MONTHS})(?:\s+\d{{1,2}})?(?:,?\s+(?:19|20)\d\d)?\b|\b\d{{1,2}}\s+(?:{_MONTHS})\b|"
    r"\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b|\b(?:19|20)\d\d\b|"
    r"\b(?:yesterday|today|last (?:week|month|year)|next (?:week|month|year))\b"
)
# Capitalised words that do not open the sentence: names of people, places, organisations, titles.
_PROPER = re.compile(r"(?<=[\s(\"'“‘])(?:[A-Z][\w'’.-]*\s+(?:of\s+|the\s+|de\s+|al-)?)*[A-Z][\w'’-]+")
_QUOTED = re.compile(r"[\"“][^\"”]{2,60}[\"”]")
# A person's name, what "who" asks for: two or more capitalised words in a row ("Jake Sullivan"), one
# after a title ("Secretary Blinken", "spokesperson Miller") or one that speaks ("Kirby said"); not a
# lone capitalised word, which is as often a people or a place ("Israeli officials", "in Rafah").
_PERSON = re.compile(
    r"(?<=[\s(\"'“‘])(?:[A-Z][\w'’.-]+\s+(?:of\s+|the\s+|de\s+|al-)?){1,5}[A-Z][\w'’-]+"
    r"|\b(?:Mr|Mrs|Ms|Dr|Gen|Lt|Col|President|Minister|Secretary|Senator|Sen|Rep|Governor|Gov|Judge|Justice|"
    r"spokesperson|spokesman|spokeswoman|CEO|chief|adviser|advisor|director)\.?\s+[A-Z][\w'’-]+"
    r"|\b[A-Z][\w'’-]+(?=\s+(?:said|says|told|added|wrote|warned)\b)"
)
_SLOTS: dict[str, tuple[re.Pattern[str], ...]] = {
    "number": (_NUMBER,),
    "duration": (_DURATION,),
    "date": (_DATE,),
    "name": (_PERSON,),
    "place": (_PROPER,),
    "entity": (_PROPER, _QUOTED, _NUMBER),
}
_REFERS = re.compile(
    r"^(?:he|she|it|they|this|that|these|those|such|the plan|the move|the decision|his|her|their|its)\b", re.I
)

FEATURES = (
    "dense",
    "focus_dense",
    "lexical",
    "dense_gap",
    "focus_gap",
    "lexical_gap",
    "focus_word",
    "slot",
    "slot_near_focus",
    "novelty",
    "rank",
    "lead",
    "refers",
    "length",
    "strict_slot_missing",
    "speech",
    "counted",
    "phrase",
    "dense_order",
    "lexical_order",
)

_HOW_WORDS = {"number": set(tokenize("many much")), "duration": set(tokenize("long"))}


@lru_cache(maxsize=65536)
def _terms(text: str) -> frozenset[str]:
    """tokenize() as a set, remembered: the same sentences and words come back question after question."""
    return frozenset(tokenize(text))


_ASKS_SPEECH = re.compile(r"\b(?:say|says|said|tell|told|warn|warned|describe|call|called|claim|claimed)\b", re.I)
_SPEECH = re.compile(r"[“\"]|\b(?:said|says|told|warned|stated|added|according to)\b", re.I)


def _slot_matches(kind: str | None, text: str, asked_terms: set[str]) -> list[tuple[int, int]]:
    """Spans of `text` that are the kind of thing asked for and not words of the question itself."""
    if kind is None:
        return []
    spans: list[tuple[int, int]] = []
    for pattern in _SLOTS[kind]:
        for m in pattern.finditer(text):
            terms = _terms(m.group())
            if kind in ("name", "place", "entity") and terms and terms <= asked_terms:
                continue  # "Rafah" in a question about Rafah answers nothing
            spans.append((m.start(), m.end()))
    return spans


def _word_index(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group()) for m in re.finditer(r"[\w'’,.%-]+", text)]


def _distance_feature(text: str, slots: list[tuple[int, int]], anchors: set[str]) -> float:
    """1 / (1 + words between the nearest slot and the nearest focus word); 0 without either."""
    if not slots or not anchors:
        return 0.0
    words = _word_index(text)
    anchor_at = [i for i, (_, _, w) in enumerate(words) if _terms(w) & anchors]
    if not anchor_at:
        return 0.0
    slot_at = [i for i, (a, b, _) in enumerate(words) if any(a < e and s < b for s, e in slots)]
    if not slot_at:
        return 0.0
    gap = min(abs(i - j) for i in slot_at for j in anchor_at)
    return 1.0 / (1.0 + max(0, gap - 1))


_WORD = re.compile(r"[a-z0-9][a-z0-9'’-]*")


def _phrase_words(text: str) -> list[str]:
    """Lowercased words, stopwords kept (they make phrases), crudely singular."""
    return [w[:-1] if len(w) > 3 and w.endswith("s") else w for w in _WORD.findall(text.lower())]


def _bigrams(words: list[str]) -> set[tuple[str, str]]:
    return {(a, b) for a, b in zip(words, words[1:], strict=False) if a not in STOPWORDS or b not in STOPWORDS}


def _counted_similarity(q: Query, candidates: Sequence[Candidate], embedder: Embedder | None) -> np.ndarray:
    """For a how-many question: how close what each figure counts ("3,000 *fighters*", "1.3 million
    *civilians*") is to what is asked about ("Hamas fighters"), by embedding, so that "operatives"
    counts as fighters and "civilians" does not. One batch of a few short phrases per question."""
    out = np.zeros(len(candidates), np.float32)
    if q.kind != "number" or q.focus_vector is None or embedder is None:
        return out
    phrases: dict[str, list[int]] = {}
    for i, c in enumerate(candidates):
        for m in _FIGURE.finditer(c.text):
            counted = _COUNTED_PHRASE.match(c.text, m.end())
            if counted:
                phrases.setdefault(counted.group(1).lower(), []).append(i)
    if not phrases:
        return out
    similarity = _phrase_vectors(embedder, list(phrases)) @ q.focus_vector
    for value, members in zip(similarity.tolist(), phrases.values(), strict=True):
        for i in members:
            out[i] = max(out[i], value)
    return out


# Vectors of the short phrases figures count ("3,000 *fighters*"), by (model, phrase): a corpus has few
# of them and every how-many question asks about the same ones again.
_PHRASE_VECTORS: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_PHRASE_VECTORS_MAX = 50_000


def _phrase_vectors(embedder: Embedder, phrases: list[str]) -> np.ndarray:
    missing = [p for p in phrases if (embedder.name, p) not in _PHRASE_VECTORS]
    if missing:
        for phrase, vector in zip(missing, embedder.encode(missing), strict=True):
            _PHRASE_VECTORS[(embedder.name, phrase)] = vector
        while len(_PHRASE_VECTORS) > _PHRASE_VECTORS_MAX:
            _PHRASE_VECTORS.popitem(last=False)
    return np.stack([_PHRASE_VECTORS[(embedder.name, p)] for p in phrases])


def features(q: Query, candidates: Sequence[Candidate], embedder: Embedder | None = None) -> np.ndarray:
    """[candidates x FEATURES]: what the model sees of each sentence."""
    if not candidates:
        return np.zeros((0, len(FEATURES)), np.float32)
    counted = _counted_similarity(q, candidates, embedder)
    vectors = np.stack([c.vector for c in candidates])
    dense = vectors @ q.vector
    if q.context_vector is not None:
        dense = np.maximum(dense, 0.9 * (vectors @ q.context_vector))
    focus_dense = vectors @ q.focus_vector if q.focus_vector is not None else dense
    terms = [_terms(c.text) for c in candidates]
    # Rare terms count more: document frequency over the candidate sentences themselves.
    df: dict[str, int] = {}
    for ts in terms:
        for t in ts:
            df[t] = df.get(t, 0) + 1
    n = len(candidates)

    def idf(t: str) -> float:
        return float(np.log(1 + n / (1 + df.get(t, 0))))

    # "How *many*", "how *much*", "how *long*" say what kind of answer is wanted, not what about:
    # "Many of the 134 hostages..." does not answer "How many fighters...?" by sharing a word.
    asked = set(q.terms) - _HOW_WORDS.get(q.kind or "", set())
    context = set(q.context_terms)
    # A short follow-up ("Where were they held?") leans on the conversation's terms.
    cw = 1.0 if len(asked) <= 2 else 0.5
    mass = sum(idf(t) for t in asked) + cw * sum(idf(t) for t in context) or 1.0
    focus = set(q.focus)
    anchors = {q.focus[-1]} if q.focus else asked  # the head noun: "how many Hamas *fighters*"
    asks_speech = bool(_ASKS_SPEECH.search(q.text))
    # The question's own phrasing found in the sentence ("led the American side"), stopwords kept.
    asked_bigrams = _bigrams(_phrase_words(q.text))
    rows = []
    for c, ts, d, fd, counted_value in zip(candidates, terms, dense, focus_dense, counted, strict=True):
        lexical = (sum(idf(t) for t in asked & ts) + cw * sum(idf(t) for t in context & ts)) / mass
        slots = _slot_matches(q.kind, c.text, asked | context)
        rows.append(
            (
                float(d),
                float(fd),
                lexical,
                len(focus & ts) / len(focus) if focus else 0.0,
                1.0 if slots else (0.0 if q.kind else 0.5),
                _distance_feature(c.text, slots, anchors),
                len(ts - asked - context) / len(ts) if ts else 0.0,
                1.0 / (1 + c.rank),
                1.0 if c.position < 3 else 0.0,
                1.0 if _REFERS.match(c.text) else 0.0,
                float(np.log1p(len(ts))),
                # A how-many, how-long or when question is not answered by a sentence without one.
                1.0 if q.kind in ("number", "duration", "date") and not slots else 0.0,
                1.0 if asks_speech and _SPEECH.search(c.text) else 0.0,
                float(counted_value),
                len(asked_bigrams & _bigrams(_phrase_words(c.text))) / len(asked_bigrams) if asked_bigrams else 0.0,
            )
        )
    x = np.asarray(rows, dtype=np.float32)
    # The sentence's place among this question's candidates, by embedding and by words.
    order = np.zeros((len(x), 2), np.float32)
    for j, column in enumerate((0, 2)):
        ranks = np.argsort(np.argsort(-x[:, column], kind="stable"), kind="stable")
        order[:, j] = 1.0 / (1.0 + ranks)
    x = np.hstack([x, order])
    # How far each sentence is from the best of this question's candidates: the absolute scales of
    # similarity differ from question to question, the order within one question is what counts.
    gaps = x[:, :3] - x[:, :3].max(axis=0, keepdims=True)
    return np.hstack([x[:, :3], gaps, x[:, 3:]])


@dataclass(frozen=True)
class AnswerModel:
    """Logistic regression over FEATURES, and the bars chosen with it."""

    weights: np.ndarray
    bias: float
    quote_bar: float
    relative_cut: float
    abstain_bar: float

    def probability(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(x @ self.weights + self.bias)))

    @classmethod
    def from_json(cls, data: dict[str, object]) -> AnswerModel:
        names = list(data["features"])  # type: ignore[call-overload]
        weights = dict(zip(names, data["weights"], strict=True))  # type: ignore[call-overload]
        return cls(
            weights=np.array([float(weights.get(f, 0.0)) for f in FEATURES], dtype=np.float32),
            bias=float(data["bias"]),  # type: ignore[arg-type]
            quote_bar=float(data["quote_bar"]),  # type: ignore[arg-type]
            relative_cut=float(data["relative_cut"]),  # type: ignore[arg-type]
            abstain_bar=float(data["abstain_bar"]),  # type: ignore[arg-type]
        )


@lru_cache(maxsize=4)
def load_model(path: Path = MODEL_PATH) -> AnswerModel:
    return AnswerModel.from_json(json.loads(path.read_text(encoding="utf-8")))


def quotation_units(text: str, spans: np.ndarray, max_sentences: int = 4) -> list[tuple[int, int]]:
    """Group sentences into the units a reader should see: each sentence alone, except a quotation
    that runs over several sentences, which is one unit with the words that say who spoke
    ("“A major ground operation there would be a mistake. It would lead to ...,” Sullivan said.").
    Returns [first, last] sentence numbers. A paragraph break ends any quotation; one that does not
    close within `max_sentences` leaves its sentences alone."""
    units: list[tuple[int, int]] = []
    inside = False
    opened = -1
    previous_end = -1
    for i, (start, end) in enumerate(spans.tolist()):
        if previous_end >= 0 and "\n" in text[previous_end:start]:
            if opened >= 0:  # the quotation did not close in its paragraph: sentences stay alone
                units += [(k, k) for k in range(opened, i)]
            inside, opened = False, -1
        was_inside = inside
        for ch in text[start:end]:
            if ch == "“":
                inside = True
            elif ch == "”":
                inside = False
            elif ch == '"':
                inside = not inside
        previous_end = end
        if opened < 0 and not was_inside and inside:
            opened = i
        elif opened < 0:
            units.append((i, i))
        if opened >= 0 and not inside:
            units.append((opened, i))
            opened = -1
        elif opened >= 0 and i - opened + 1 >= max_sentences:
            units += [(k, k) for k in range(opened, i + 1)]
            inside, opened = False, -1
    if opened >= 0:
        units += [(k, k) for k in range(opened, len(spans))]
    return units


# How far beyond a passage a quotation unit may reach for its opening or closing sentence.
_UNIT_REACH = 1500
# How far around its best passage an article's other sentences are candidates: a news article
# whole, a book-length document only near where the question hit it.
_ARTICLE_REACH = 12000


def _units_of(
    retriever: Retriever, passage: Passage, lo: int, hi: int, inside: tuple[int, int] | None
) -> list[tuple[int, int, str, np.ndarray, int]]:
    """(start, end, text, vector, sentence number in the article) of the quotation units of
    [lo, hi) of the passage's article; with `inside`, only units with a sentence starting in it."""
    doc = retriever.stored.documents[passage.doc_id]
    table = retriever.stored.sentences
    offsets, vectors = table.of(passage.doc_id, max(0, lo), min(len(doc.text), hi))
    if not len(offsets):
        return []
    article_spans = table.spans[passage.doc_id][1]
    base = int(np.searchsorted(article_spans[:, 0], int(offsets[0, 0]))) if len(article_spans) else 0
    out = []
    for first, last in quotation_units(doc.text, offsets):
        if inside is not None and not any(inside[0] <= int(offsets[i, 0]) < inside[1] for i in range(first, last + 1)):
            continue
        start, end = int(offsets[first, 0]), int(offsets[last, 1])
        vector = vectors[first : last + 1].sum(axis=0)
        vector = vector / (float(np.linalg.norm(vector)) or 1.0)
        out.append((start, end, doc.text[start:end], vector.astype(np.float32), base + first))
    return out


def candidates(
    retriever: Retriever, passages: Sequence[Passage], min_words: int = 4, whole_articles: int = 0
) -> list[Candidate]:
    """Every sentence (or quotation unit, see `quotation_units`) of the passages, once, with its
    stored vector (a unit's is the normalised sum of its sentences'). With `whole_articles`, also
    every other sentence of the first that many articles (within `_ARTICLE_REACH` of their best
    passage), ranked as that passage: the answer to a question that found the right article is
    often in a paragraph the passage search did not return."""
    out: list[Candidate] = []
    seen: set[tuple[str, int]] = set()

    def add(passage: Passage, rank: int, units: list[tuple[int, int, str, np.ndarray, int]]) -> None:
        for start, end, text, vector, position in units:
            if (passage.doc_id, start) in seen or len(re.findall(r"\w+", text)) < min_words:
                continue
            seen.add((passage.doc_id, start))
            out.append(Candidate(passage, rank, start, end, text, vector, position))

    for rank, passage in enumerate(passages):
        doc = retriever.stored.documents[passage.doc_id]
        # From the start of the passage's first paragraph, so that an open quotation is seen open.
        lo = max(doc.text.rfind("\n", 0, passage.start) + 1, passage.start - _UNIT_REACH)
        add(passage, rank, _units_of(retriever, passage, lo, passage.end + _UNIT_REACH, (passage.start, passage.end)))
    best_rank: dict[str, int] = {}
    for rank, passage in enumerate(passages):
        best_rank.setdefault(passage.doc_id, rank)
    for rank in list(best_rank.values())[:whole_articles]:
        passage = passages[rank]
        units = _units_of(retriever, passage, passage.start - _ARTICLE_REACH, passage.end + _ARTICLE_REACH, None)
        add(passage, rank, units)
    return out


def score_sentences(
    retriever: Retriever, q: Query, passages: Sequence[Passage], settings: AnswerSettings | None = None
) -> list[ScoredSentence]:
    """Candidate sentences with their probability of answering, best first."""
    s = settings or AnswerSettings()
    found = candidates(retriever, passages, s.min_words, s.whole_articles)
    if not found:
        return []
    p = load_model().probability(features(q, found, retriever.embedder))
    scored = [ScoredSentence(c, float(prob)) for c, prob in zip(found, p, strict=True)]
    scored.sort(key=lambda x: -x.probability)
    return scored


def term_coverage(retriever: Retriever, q: Query) -> float:
    """How much of the question the index has words for: "Who won the FIFA World Cup?" asks about
    words the articles never use. Terms weigh by their rarity (idf), so that missing the telling
    words ("FIFA", "Cup") counts more than having the common ones ("won", "world")."""
    if not q.terms:
        return 1.0
    stored = retriever.stored
    df = np.asarray(stored.document_frequencies(list(q.terms)), dtype=np.float64)
    n = max(stored.size, 1)
    weight = np.log1p(n / np.maximum(df, 0.5))  # an unknown term weighs as one seen half a time
    return float(weight[df > 0].sum() / weight.sum())


def confidence(retriever: Retriever, q: Query, scored: Sequence[ScoredSentence], settings: AnswerSettings) -> float:
    """How sure we are that the articles answer: the best sentence's probability, less what the
    question asks about that the index has never seen."""
    if not scored:
        return 0.0
    return scored[0].probability - settings.coverage_weight * (1.0 - term_coverage(retriever, q))


def answer_question(
    retriever: Retriever,
    question: str | Query,
    history: Sequence[str] = (),
    outlets: Sequence[str] | None = None,
    settings: AnswerSettings | None = None,
) -> Answer:
    s = settings or AnswerSettings()
    model = load_model()
    bars = (
        s.quote_bar if s.quote_bar is not None else model.quote_bar,
        s.relative_cut if s.relative_cut is not None else model.relative_cut,
        s.abstain_bar if s.abstain_bar is not None else model.abstain_bar,
    )
    q = question if isinstance(question, Query) else retriever.analyse(question, history, outlets)
    passages = retriever.search_query(q, k=s.passages)
    scored = score_sentences(retriever, q, passages, s)
    window = q.window_label
    best = confidence(retriever, q, scored, s)
    unscoped: tuple[Query, list[ScoredSentence]] | None = None
    if q.outlets is not None and scored and best >= bars[2]:
        unscoped = _unscoped(retriever, q, s)
        weak = best < s.scoped_share * confidence(retriever, *unscoped, s)
    else:
        weak = False
    if not scored or best < bars[2] or weak:
        text = _abstain_text(retriever, q, s, bars[2], unscoped)
        if window:
            text = f"_{md_literal(window)}_\n\n{text}"
        return Answer(text=text, passages=tuple(passages), abstained=True, window=window)
    chosen = _choose(_slot_first(q, scored), s, bars[0], bars[1])
    return _compose(retriever, q, chosen, passages, s)


def _unscoped(retriever: Retriever, q: Query, s: AnswerSettings) -> tuple[Query, list[ScoredSentence]]:
    """The question asked of every outlet, and its scored sentences."""
    everywhere = q.without_outlets()
    return everywhere, score_sentences(retriever, everywhere, retriever.search_query(everywhere, k=s.passages), s)


def _abstain_text(
    retriever: Retriever,
    q: Query,
    s: AnswerSettings,
    bar: float,
    unscoped: tuple[Query, list[ScoredSentence]] | None = None,
) -> str:
    """The abstention, and for an outlet-scoped question, which other outlets do report it.
    `unscoped`: the question without its outlets and its scored sentences, when already computed."""
    if q.outlets is None:
        return ABSTAIN_TEXT
    scope = "named" if q.named_outlets else "ticked"
    wanted = {outlet_key(o) for o in q.outlets}
    names = [o for o in retriever.outlets if outlet_key(o) in wanted] or list(q.outlets)
    if unscoped is None:
        unscoped = _unscoped(retriever, q, s)
    everywhere, scored = unscoped
    others: list[str] = []
    if scored and confidence(retriever, everywhere, scored, s) >= bar:
        others = list(
            dict.fromkeys(
                x.passage.outlet for x in scored if x.probability >= bar and outlet_key(x.passage.outlet) not in wanted
            )
        )
    head = f"None of the {scope} outlets ({_join(names)}) reports this"
    if others:
        return f"{head}; {_join(others)} {'does' if len(others) == 1 else 'do'}."
    return f"{head}. {ABSTAIN_TEXT}"


# Kinds whose answer must hold the slot: a "how long" question is not answered by a sentence with no
# duration in it, however close to the question (an article's lead: "officials held a virtual meeting
# on Monday"). Not numbers: "134 hostages" holds a figure and does not answer "how many fighters"; on
# our seed files and RealTime QA weeks putting figures or names first lost more than it won, and dates
# and places changed nothing (bench/train_answer.py's docstring).
_SLOT_FIRST = frozenset({"duration"})


def _slot_first(q: Query, scored: list[ScoredSentence]) -> list[ScoredSentence]:
    """For a kind in _SLOT_FIRST, the sentences holding what is asked for come first, each group in
    its order; unchanged when none holds it. After the abstention, which reads the best probability."""
    if q.kind not in _SLOT_FIRST:
        return scored
    asked = set(q.terms) | set(q.context_terms)
    holds = [bool(_slot_matches(q.kind, x.text, asked)) for x in scored]
    if not any(holds):
        return scored
    order = sorted(range(len(scored)), key=lambda i: not holds[i])  # stable: each group keeps its order
    return [scored[i] for i in order]


def _choose(
    scored: list[ScoredSentence], s: AnswerSettings, quote_bar: float, relative_cut: float
) -> list[ScoredSentence]:
    best = scored[0].probability
    bar = max(quote_bar, relative_cut * best)
    chosen: list[ScoredSentence] = [scored[0]]
    for x in scored[1:]:
        if x.probability < bar or len(chosen) >= s.max_quotes:
            break
        # An outlet printing the same sentence twice (standfirst and body) is quoted once.
        if not any(
            outlet_key(c.passage.outlet) == outlet_key(x.passage.outlet)
            and float(c.candidate.vector @ x.candidate.vector) >= 0.95
            for c in chosen
        ):
            chosen.append(x)
    return chosen


def _figures(text: str) -> set[str]:
    return {m.group().rstrip(".,").lower() for m in _NUMBER.finditer(text)}


def _context_before(retriever: Retriever, x: ScoredSentence) -> tuple[str, int]:
    """The sentence before a quote that opens with a reference ("He", "Such a plan"), verbatim."""
    if not _REFERS.match(x.text):
        return "", -1
    first, spans = retriever.stored.sentences.spans[x.passage.doc_id]
    i = int(np.searchsorted(spans[:, 0], x.candidate.start)) - 1
    if i < 0:
        return "", -1
    start, end = (int(v) for v in spans[i])
    return retriever.stored.documents[x.passage.doc_id].text[start:end], start


def _compose(
    retriever: Retriever, q: Query, chosen: list[ScoredSentence], passages: Sequence[Passage], s: AnswerSettings
) -> Answer:
    # Group near-identical facts across outlets: one quote shown, every outlet named.
    groups: list[list[ScoredSentence]] = []
    for x in chosen:
        for group in groups:
            head = group[0]
            if (
                outlet_key(head.passage.outlet) != outlet_key(x.passage.outlet)
                and float(head.candidate.vector @ x.candidate.vector) >= s.same_fact
                and _figures(head.text) == _figures(x.text)
            ):
                group.append(x)
                break
        else:
            groups.append([x])

    quotes: list[Quote] = []
    contexts: dict[int, tuple[str, int]] = {}
    for group in groups:
        for x in group:
            context, context_start = _context_before(retriever, x)
            contexts[id(x)] = (context, context_start)
            quotes.append(
                Quote(
                    text=x.text,
                    outlet=x.passage.outlet,
                    title=x.passage.title,
                    source=x.passage.source,
                    start=x.candidate.start,
                    end=x.candidate.end,
                    doc_id=x.passage.doc_id,
                    score=round(x.probability, 4),
                    context=context,
                    context_start=context_start,
                    date=x.passage.date,
                )
            )
    lines: list[str] = []
    notes: list[str] = []
    if q.window_label:
        lines += [f"_{md_literal(q.window_label)}_", ""]
    direct = direct_answer(q, chosen)
    if direct:
        lines += [f"**Answer:** {direct}", ""]
    differ = _differing_figures(q, groups)
    if differ:
        lines += [f"**The outlets' figures differ:** {differ}", ""]
        notes.append(f"The outlets' figures differ: {differ}")
    by_outlet: OrderedDict[str, list[list[ScoredSentence]]] = OrderedDict()
    for group in groups:
        by_outlet.setdefault(group[0].passage.outlet, []).append(group)
    for outlet, outlet_groups in by_outlet.items():
        first = outlet_groups[0][0].passage
        lines.append(f"**{md_literal(attribution(outlet, first.date or ''))}** — *{md_literal(first.title)}*")
        for group in outlet_groups:
            context, _ = contexts[id(group[0])]
            if context:
                lines.append(f"> _{md_literal(context)}_")
            lines.append(f"> {md_literal(group[0].text)}")
            quoted = group[0].passage
            if quoted.doc_id != first.doc_id:  # another article of the same outlet: its own date and headline
                lines.append(f">\n> _{md_literal(attribution(outlet, quoted.date or ''))}, {md_literal(quoted.title)}_")
            others = list(dict.fromkeys(x.passage.outlet for x in group))
            if len(others) > 1:
                note = f"Reported by {_join(others)}."
                lines.append(f">\n> _{note}_")
                notes.append(note)
        lines.append("")
    return Answer(
        text="\n".join(lines).strip(),
        quotes=tuple(quotes),
        passages=tuple(passages),
        abstained=False,
        notes=tuple(notes),
        window=q.window_label,
    )


# A figure with its qualifier and what it counts: "some 3,000 fighters", "between 4,000 and 8,000".
_FIGURE = re.compile(
    # Word boundaries: "ten" is not a figure inside "tents", nor "some" inside "awesome".
    r"(?:\b(?:between|some|about|around|over|more than|at least|nearly|almost|well over|up to|roughly|"
    r"an estimated|approximately)\s+)?"
    rf"(?:\d[\d,.]*%?|\b(?:{_NUMBER_WORDS})\b)(?:\s*(?:and|to|-|–)\s*\d[\d,.]*)?(?:\s+(?:million|billion|thousand))?",
    re.IGNORECASE,
)
_NOT_A_COUNT = re.compile(r"^(?:19|20)\d\d$|^\d{1,2}$")  # years and day numbers are not what differs


_COUNTED_PHRASE = re.compile(r"\s+((?:[A-Za-z][\w-]*\s+)?[A-Za-z][\w-]*)")
_COUNTED = re.compile(r"\s+(?!(?:and|or|of|in|to|the|a|an|are|is|were|was|have|has|had|who|that)\b)[A-Za-z][\w-]*")


def _slot_span(q: Query, text: str, with_noun: bool = False) -> str:
    """The part of a quoted sentence that is the answer: the slot nearest the question's focus;
    for a figure, `with_noun` adds the word after it ("some 3,000 fighters")."""
    if q.kind not in ("number", "duration", "date", "name", "place"):
        return ""
    pattern = _FIGURE if q.kind == "number" else None
    slots = (
        [(m.start(), m.end()) for m in pattern.finditer(text)]
        if pattern
        else _slot_matches(q.kind, text, set(q.terms) | set(q.context_terms))
    )
    slots = [(a, b) for a, b in slots if text[a:b].strip()]
    if not slots:
        return ""
    anchors = {q.focus[-1]} if q.focus else set(q.terms)
    words = _word_index(text)
    anchor_pos = [a for a, _, w in words if _terms(w) & anchors]
    if not anchor_pos:
        return text[slots[0][0] : slots[0][1]].strip()
    a, b = min(slots, key=lambda sp: min(abs(sp[0] - p) for p in anchor_pos))
    if with_noun and q.kind == "number":
        noun = _COUNTED.match(text, b)
        b = noun.end() if noun else b
    return text[a:b].strip()


def direct_answer(q: Query, chosen: Sequence[ScoredSentence]) -> str:
    """One line built only from quoted spans, each tied to its outlet: "some 3,000 (JNS);
    between 4,000 and 8,000 (All Israel News)". Empty when the question asks for no slot."""
    per_span: OrderedDict[str, list[str]] = OrderedDict()
    for x in chosen:
        span = _slot_span(q, x.text)
        if span:
            per_span.setdefault(span, [])
            if x.passage.outlet not in per_span[span]:
                per_span[span].append(x.passage.outlet)
    # The same figure in different words from one outlet is said once.
    parts = [f"{md_literal(span)} ({md_literal(_join(outlets))})" for span, outlets in per_span.items()]
    return "; ".join(parts[:4])


def _differing_figures(q: Query, groups: list[list[ScoredSentence]]) -> str:
    """'JNS: some 3,000; All Israel News: between 4,000 and 8,000' when a how-many question gets
    different figures from different outlets."""
    if q.kind != "number":
        return ""
    per_outlet: OrderedDict[str, str] = OrderedDict()
    for group in groups:
        head = group[0]
        figure = _slot_span(q, head.text, with_noun=True)
        digits = re.sub(r"\D", "", figure)
        if not figure or _NOT_A_COUNT.match(digits or figure):
            continue
        per_outlet.setdefault(head.passage.outlet, figure)
    if len(per_outlet) < 2 or len({re.sub(r"\D", "", f) for f in per_outlet.values()}) < 2:
        return ""
    return "; ".join(f"{md_literal(o)}: {md_literal(f)}" for o, f in per_outlet.items())


def _join(names: Sequence[str]) -> str:
    names = list(names)
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
