"""Synthetic articles for the scale benchmarks (bench/append.py, bench/million.py).

Text is shaped like the RealTime QA index (/tmp/rtqa/index: 21.5 chunks per article, 4.1
sentences and 61 BM25 tokens per chunk, the commonest term in 28% of chunks): about 45% of the
words are English stopwords (the tokenizer drops them), the rest follow a Zipf-Mandelbrot law,
p(rank) ~ 1 / (rank + 20), over a vocabulary of 500,000 generated words, so that the commonest
term is in about a quarter of the chunks and BM25 walks realistically long postings. Vectors are
random unit vectors (uniform on the sphere: the hardest case for an HNSW graph, see bench/growth.py).
Each article gets one of 40 outlets and a date between 2019-01-01 and 2023-12-31.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

import numpy as np

from rag.lexical import STOPWORDS
from rag.store import NewDocuments, SentenceTable
from rag.types import Chunk, Document

DIM = 384
VOCABULARY = 500_000
ZIPF_OFFSET = 20
STOPWORD_SHARE = 0.45
OUTLETS = 40
FIRST_DAY = dt.date(2019, 1, 1)
DAYS = 5 * 365


class Vocabulary:
    """Generated words and their Zipf-Mandelbrot sampling table; the same for every seed."""

    def __init__(self, size: int = VOCABULARY, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", np.uint8)
        words: dict[str, None] = {}
        while len(words) < size:
            lengths = rng.integers(4, 11, size=size)
            codes = rng.choice(letters, size=(size, 10))
            for row, n in zip(codes, lengths, strict=True):
                word = row[:n].tobytes().decode()
                if word not in STOPWORDS:
                    words[word] = None
                if len(words) == size:
                    break
        self.words = np.array(list(words), dtype=object)
        weights = 1.0 / (np.arange(1, size + 1) + ZIPF_OFFSET)
        self.cdf = np.cumsum(weights) / weights.sum()
        self.stopwords = np.array(sorted(STOPWORDS), dtype=object)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n words: stopwords with probability STOPWORD_SHARE, else Zipf-distributed content words."""
        content = self.words[np.minimum(np.searchsorted(self.cdf, rng.random(n)), len(self.words) - 1)]
        stop = rng.random(n) < STOPWORD_SHARE
        content[stop] = self.stopwords[rng.integers(0, len(self.stopwords), int(stop.sum()))]
        return content


_VOCABULARY: Vocabulary | None = None


def vocabulary() -> Vocabulary:
    global _VOCABULARY
    if _VOCABULARY is None:
        _VOCABULARY = Vocabulary()
    return _VOCABULARY


class Generator:
    """Articles of generated text with random unit chunk and sentence vectors. Two generators with
    different seeds make different doc ids; the same seed makes the same articles."""

    def __init__(self, seed: int, chunks_per_article: int = 20, sentences_per_chunk: float = 4.0) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.words = vocabulary()
        self.chunks_per_article = chunks_per_article
        self.sentences_per_chunk = sentences_per_chunk
        self.serial = 0

    def sentence(self) -> str:
        """One sentence of 12 to 35 words."""
        words = self.words.sample(self.rng, int(self.rng.integers(12, 36)))
        text = " ".join(words)
        return text[0].upper() + text[1:] + "."

    def batch(self, articles: int) -> NewDocuments:
        docs: list[Document] = []
        chunks: list[Chunk] = []
        spans: dict[str, tuple[int, np.ndarray]] = {}
        lexical: list[str] = []
        n_sentences = 0
        for _ in range(articles):
            self.serial += 1
            doc_id = hashlib.sha256(f"{self.seed}:{self.serial}".encode()).hexdigest()[:20]
            title = " ".join(self.words.sample(self.rng, 8)).capitalize()
            counts = np.maximum(1, self.rng.poisson(self.sentences_per_chunk - 1, self.chunks_per_article) + 1)
            sentences = [self.sentence() for _ in range(int(counts.sum()))]
            lengths = np.fromiter((len(s) for s in sentences), np.int64, len(sentences))
            starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
            offsets = np.stack([starts, starts + lengths], axis=1)
            text = " ".join(sentences)
            last = np.cumsum(counts) - 1
            first = last - counts + 1
            day = FIRST_DAY + dt.timedelta(days=int(self.rng.integers(0, DAYS)))
            outlet = f"Outlet {int(self.rng.integers(0, OUTLETS))}"
            docs.append(Document(doc_id, f"/synthetic/{doc_id}.txt", text, outlet, title=title, date=day.isoformat()))
            for i, (a, b) in enumerate(zip(first.tolist(), last.tolist(), strict=True)):
                start, end = int(offsets[a, 0]), int(offsets[b, 1])
                chunks.append(Chunk(doc_id, i, start, end, text[start:end]))
                lexical.append(f"{title}\n{text[start:end]}")
            spans[doc_id] = (n_sentences, offsets)
            n_sentences += len(offsets)
        vectors = unit(self.rng, len(chunks))
        table = SentenceTable(spans, unit(self.rng, n_sentences, np.float16))
        return NewDocuments(docs, chunks, vectors, lexical, table)


def unit(rng: np.random.Generator, n: int, dtype: type = np.float32, block: int = 100_000) -> np.ndarray:
    """n random L2-normalised rows (generated in blocks: float32 temporaries stay small)."""
    out = np.empty((n, DIM), dtype)
    for lo in range(0, n, block):
        v = rng.standard_normal((min(block, n - lo), DIM), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[lo : lo + len(v)] = v
    return out


def question_from(text: str, rng: np.random.Generator, content_words: int = 10) -> str:
    """A question of about 19 words (as RealTime QA's) built from one chunk's words: `content_words`
    of its non-stopwords, in their order, among stopwords."""
    words = [w.strip(".").lower() for w in text.split()]
    content = [w for w in words if w not in STOPWORDS]
    picked = sorted(rng.choice(len(content), size=min(content_words, len(content)), replace=False).tolist())
    out: list[str] = ["what"]
    stop = vocabulary().stopwords
    for i in picked:
        out.append(content[i])
        if rng.random() < 0.8:
            out.append(str(stop[int(rng.integers(0, len(stop)))]))
    return (" ".join(out) + "?").capitalize()


def sample_texts(texts: Sequence[str], n: int, rng: np.random.Generator) -> list[str]:
    return [texts[i] for i in rng.choice(len(texts), size=min(n, len(texts)), replace=False).tolist()]
