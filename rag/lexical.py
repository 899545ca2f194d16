"""BM25 over chunks (bm25s), with a tokenizer that keeps the figures news questions ask about."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "said",
        "says",
        "say",
        "also",
        "according",
    ]
)

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    """Lowercased, stemmed words and whole numbers ("3,000" -> "3000"), stopwords dropped."""
    words = []
    for match in _TOKEN.finditer(text.lower()):
        token = match.group()
        if token[0].isdigit():
            words.append(token.replace(",", ""))
        else:
            token = token.replace("’", "'")
            if token.endswith("'s"):
                token = token[:-2]
            if token not in STOPWORDS and len(token) > 1:
                words.append(token)
    stemmer = _stemmer()
    return [w if w[0].isdigit() else stemmer.stemWord(w) for w in words]


class LexicalIndex:
    """A BM25 index whose rows line up with the chunk rows of the dense index."""

    def __init__(self, model: object, size: int) -> None:
        self._model = model
        self.size = size

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        import bm25s

        from rag.bm25 import K1, B  # here: rag.bm25 imports this module

        tokens = [tokenize(t) or ["\u2400"] for t in texts]  # bm25s needs a token per row
        model = bm25s.BM25(k1=K1, b=B)  # the segments' formula (rag/bm25.py), so the two score alike
        if texts:
            model.index(tokens, show_progress=False)
        return cls(model, len(texts))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self.size:
            self._model.save(str(directory), show_progress=False)  # type: ignore[attr-defined]

    @classmethod
    def load(cls, directory: Path, size: int) -> LexicalIndex:
        import bm25s

        if not size:
            return cls(bm25s.BM25(), 0)
        logging.getLogger("bm25s").setLevel(logging.ERROR)
        model = bm25s.BM25.load(str(directory), mmap=False, allow_pickle=False, show_progress=False)
        return cls(model, size)

    def search(self, query: str, k: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(row, score) best first; rows outside `mask` (bool per row) are left out."""
        return self.search_terms(tokenize(query), k, mask)

    def search_terms(self, terms: Sequence[str], k: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """As `search`, for terms already tokenised."""
        if not self.size:
            return []  # an index of no chunks has no vocabulary to look words up in
        tokens = [t for t in terms if t in self._vocab()]
        if not tokens:
            return []
        k = min(k, self.size)
        weight = mask.astype(np.float32) if mask is not None else None
        rows, scores = self._model.retrieve(  # type: ignore[attr-defined]
            [tokens], k=k, show_progress=False, weight_mask=weight, n_threads=1
        )
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if s > 0]

    def scores(self, terms: Sequence[str], mask: np.ndarray | None = None) -> np.ndarray | None:
        """BM25 score of every row for these terms (0 outside `mask`); None when no term is known."""
        if not self.size:
            return None
        tokens = [t for t in dict.fromkeys(terms) if t in self._vocab()]
        if not tokens:
            return None
        values = np.asarray(self._model.get_scores(tokens), dtype=np.float32)  # type: ignore[attr-defined]
        return np.where(mask, values, 0.0).astype(np.float32) if mask is not None else values

    def has_term(self, term: str) -> bool:
        return self.size > 0 and term in self._vocab()

    def _vocab(self) -> dict[str, int]:
        vocab: dict[str, int] = self._model.vocab_dict  # type: ignore[attr-defined]
        return vocab
