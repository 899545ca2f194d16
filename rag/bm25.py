"""BM25 over segments: each segment keeps raw term counts, scores use the statistics of all live chunks.

bm25s stores scores with the index's own IDF and average length baked in, so two bm25s indexes
cannot be summed into the scores of one. A segment therefore stores, per term, the rows that
contain it and how often (a CSC matrix in the same .npy layout bm25s uses), and each row's
length; at query time the document frequency of a term, the number of live chunks and their
average length are summed over segments (tombstoned rows left out). The formula is bm25s's
default ("lucene": idf = ln(1 + (N - df + 0.5) / (df + 0.5)), tf / (tf + k1 (1 - b + b len / avg))),
so a store of one segment scores exactly as rag.lexical.LexicalIndex does.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.lexical import tokenize

K1 = 1.5
# Length normalisation: 0.6, not the usual 0.75, chosen by week-fold cross-validation on RealTime QA
# (bench/tune_ranking.py): a long article's chunks are all about its story, a short chunk is not more
# likely to answer for being short. rag.lexical builds its bm25s indexes with the same k1 and b.
B = 0.6
EMPTY_TOKEN = "\u2400"  # a row with no words still has length 1, as in rag.lexical


@dataclass(frozen=True)
class TermCounts:
    """One segment's term counts: for term t, rows[indptr[t]:indptr[t+1]] hold it counts[...] times."""

    vocab: dict[str, int]
    indptr: np.ndarray  # int64 [terms + 1]
    rows: np.ndarray  # int32 [postings], ascending within a term
    counts: np.ndarray  # float32 [postings]
    lengths: np.ndarray  # float32 [rows]: tokens per row

    @classmethod
    def of_texts(cls, texts: Sequence[str]) -> TermCounts:
        return cls.of_tokens([tokenize(t) or [EMPTY_TOKEN] for t in texts])

    @classmethod
    def of_tokens(cls, token_lists: Sequence[Sequence[str]]) -> TermCounts:
        vocab: dict[str, int] = {}
        terms: list[int] = []
        rows: list[int] = []
        counts: list[int] = []
        lengths = np.zeros(len(token_lists), np.float32)
        for row, tokens in enumerate(token_lists):
            lengths[row] = len(tokens)
            for token, n in Counter(tokens).items():
                terms.append(vocab.setdefault(token, len(vocab)))
                rows.append(row)
                counts.append(n)
        return cls.of_postings(
            vocab, np.asarray(terms, np.int64), np.asarray(rows, np.int64), np.asarray(counts, np.float32), lengths
        )

    @classmethod
    def of_postings(
        cls, vocab: dict[str, int], terms: np.ndarray, rows: np.ndarray, counts: np.ndarray, lengths: np.ndarray
    ) -> TermCounts:
        order = np.lexsort((rows, terms))
        indptr = np.zeros(len(vocab) + 1, np.int64)
        np.cumsum(np.bincount(terms, minlength=len(vocab)), out=indptr[1:])
        return cls(
            vocab, indptr, rows[order].astype(np.int32), counts[order].astype(np.float32), lengths.astype(np.float32)
        )

    @classmethod
    def merge(cls, parts: Sequence[tuple[TermCounts, np.ndarray]]) -> TermCounts:
        """The counts of the kept rows (bool mask per part) of several segments, rows renumbered in order."""
        vocab: dict[str, int] = {}
        all_terms, all_rows, all_counts, all_lengths = [], [], [], []
        offset = 0
        for part, keep in parts:
            remap = np.array([vocab.setdefault(t, len(vocab)) for t in part.vocab], np.int64)
            local_terms = np.repeat(np.arange(len(part.vocab)), np.diff(part.indptr))
            new_row = np.cumsum(keep) - 1 + offset
            live = keep[part.rows]
            all_terms.append(remap[local_terms[live]] if len(remap) else np.zeros(0, np.int64))
            all_rows.append(new_row[part.rows[live]])
            all_counts.append(np.asarray(part.counts)[live])
            all_lengths.append(np.asarray(part.lengths)[keep])
            offset += int(keep.sum())
        if not parts:
            return cls.of_tokens([])
        return cls.of_postings(
            vocab,
            np.concatenate(all_terms).astype(np.int64),
            np.concatenate(all_rows).astype(np.int64),
            np.concatenate(all_counts),
            np.concatenate(all_lengths),
        )

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        column = self.vocab.get(term)
        if column is None:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        lo, hi = int(self.indptr[column]), int(self.indptr[column + 1])
        return np.asarray(self.rows[lo:hi]), np.asarray(self.counts[lo:hi])

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "vocab.json").write_text(json.dumps(self.vocab, ensure_ascii=False), encoding="utf-8")
        for name in ("indptr", "rows", "counts", "lengths"):
            np.save(directory / f"{name}.npy", getattr(self, name), allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> TermCounts:
        vocab = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
        arrays = {n: mapped(directory / f"{n}.npy") for n in ("indptr", "rows", "counts", "lengths")}
        return cls(dict(vocab), **arrays)


def mapped(path: Path) -> np.ndarray:
    """A .npy file memory-mapped, as a plain ndarray: slicing a np.memmap costs microseconds of Python
    per slice, thousands of slices a question on a large index."""
    return np.asarray(np.load(path, allow_pickle=False, mmap_mode="r"))


def bm25_scores(parts: Sequence[tuple[TermCounts, np.ndarray]], terms: Sequence[str]) -> list[np.ndarray] | None:
    """Per part (term counts, live mask), the BM25 score of every row, with document frequencies,
    chunk count and average length taken over the live rows of all parts; dead rows score 0.
    None when no term occurs in a live row."""
    counts = [int(live.sum()) for _, live in parts]
    n_live = sum(counts)
    if not n_live:
        return None
    # A part without dead rows (the usual case) needs no masking, which copied every row of the index
    # for every question. Lengths are whole numbers: their float64 sum is exact in any order.
    whole = [n == len(live) for n, (_, live) in zip(counts, parts, strict=True)]
    lengths = [np.asarray(tc.lengths) for tc, _ in parts]
    average = (
        sum(
            float(np.sum(length, dtype=np.float64) if all_live else np.sum(length[live], dtype=np.float64))
            for length, all_live, (_, live) in zip(lengths, whole, parts, strict=True)
        )
        / n_live
    )
    scores = [np.zeros(len(live), np.float32) for _, live in parts]
    found = False
    for term in dict.fromkeys(terms):
        postings = [tc.postings(term) for tc, _ in parts]
        df = sum(
            len(rows) if all_live else int(live[rows].sum())
            for (rows, _), all_live, (_, live) in zip(postings, whole, parts, strict=True)
        )
        if not df:
            continue
        found = True
        idf = math.log(1 + (n_live - df + 0.5) / (df + 0.5))
        for (rows, tf), length, out in zip(postings, lengths, scores, strict=True):
            if len(rows):
                norm = K1 * ((1 - B) + B * length[rows] / average)
                out[rows] += (idf * (tf / (norm + tf))).astype(np.float32)
    if not found:
        return None
    return [
        s if all_live else np.where(live, s, 0.0).astype(np.float32)
        for s, all_live, (_, live) in zip(scores, whole, parts, strict=True)
    ]
