"""rag.lexical: the BM25 tokenizer keeps figures and stems words; search honours masks; save/load
round-trips without pickle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.lexical import LexicalIndex, tokenize

TEXTS = [
    "According to Israeli estimates, some 3,000 Hamas fighters are concentrated in Rafah.",
    "Hamas is believed to have a sizable force of between 4,000 and 8,000 operatives in the Rafah area.",
    "The population of Rafah has swelled to over 1.3 million civilians during the war.",
    "Qatar and Egypt have been holding indirect negotiations for the release of 134 hostages.",
    "The weather in Tel Aviv was mild on Monday.",
]


@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    return LexicalIndex.build(TEXTS)


def rows(hits: list[tuple[int, float]]) -> list[int]:
    return [row for row, _ in hits]


def test_numbers_are_kept_whole_without_separators() -> None:
    assert "3000" in tokenize("some 3,000 fighters")
    assert tokenize("3,000") == tokenize("3000") == ["3000"]
    assert tokenize("4,000-8,000 operatives")[:2] == ["4000", "8000"]
    assert "1.3" in tokenize("over 1.3 million")
    assert "134" in tokenize("the 134 hostages.")
    assert "2024" in tokenize("March 24, 2024.")


def test_stemming_stopwords_and_possessives() -> None:
    assert tokenize("fighters") == tokenize("fighter")
    assert tokenize("negotiations") == tokenize("negotiating")
    assert tokenize("Netanyahu’s") == tokenize("Netanyahu's") == tokenize("Netanyahu")
    assert tokenize("The officials said that it was according to them") == tokenize("officials")
    assert tokenize("a I x") == []  # stopwords and single letters go


def test_search_matches_numbers_across_formats(index: LexicalIndex) -> None:
    assert rows(index.search("3000 fighters", k=5))[0] == 0
    assert rows(index.search("How many operatives? 8000", k=5))[0] == 1
    assert rows(index.search("1.3 million", k=5))[0] == 2


def test_search_uses_stems(index: LexicalIndex) -> None:
    hits = index.search("negotiating the hostage release", k=5)
    assert rows(hits)[0] == 3
    assert all(score > 0 for _, score in hits)
    scores = [score for _, score in hits]
    assert scores == sorted(scores, reverse=True)


def test_search_without_known_words_is_empty(index: LexicalIndex) -> None:
    assert index.search("the of and", k=5) == []
    assert index.search("zebra quarantine", k=5) == []
    assert index.search("", k=5) == []


def test_mask_filters_rows(index: LexicalIndex) -> None:
    everything = rows(index.search("Rafah", k=5))
    assert set(everything) == {0, 1, 2}
    mask = np.array([False, True, True, True, True])
    masked = rows(index.search("Rafah", k=5, mask=mask))
    assert 0 not in masked
    assert set(masked) == {1, 2}
    assert index.search("3000 fighters", k=5, mask=mask) == []  # the only match is masked out
    assert index.search("Rafah", k=5, mask=np.zeros(5, dtype=bool)) == []


def test_k_is_capped(index: LexicalIndex) -> None:
    assert len(index.search("Rafah Hamas", k=100)) <= len(TEXTS)
    assert len(index.search("Rafah Hamas", k=1)) == 1


def test_save_load_round_trip_without_pickle(index: LexicalIndex, tmp_path: Path) -> None:
    directory = tmp_path / "lexical"
    index.save(directory)
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    assert files
    for path in files:
        head = path.read_bytes()[:2]
        assert head != b"\x80\x04" and head[:1] != b"\x80", f"{path.name} looks like a pickle"
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)  # raises on object arrays
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        else:
            pytest.fail(f"unexpected file in the saved index: {path.name}")
    loaded = LexicalIndex.load(directory, size=len(TEXTS))
    assert loaded.size == len(TEXTS)
    for query in ("3000 fighters", "negotiations", "Rafah civilians", "Monday weather"):
        expected = index.search(query, k=5)
        got = loaded.search(query, k=5)
        assert rows(got) == rows(expected)
        assert np.allclose([s for _, s in got], [s for _, s in expected])
    mask = np.array([True, False, True, False, True])
    assert loaded.search("Rafah", k=5, mask=mask) == index.search("Rafah", k=5, mask=mask)


def test_empty_index(tmp_path: Path) -> None:
    empty = LexicalIndex.build([])
    assert empty.search("Rafah", k=5) == []
    empty.save(tmp_path / "empty")
    assert LexicalIndex.load(tmp_path / "empty", size=0).search("Rafah", k=5) == []


def test_rows_without_tokens_still_line_up() -> None:
    """A chunk with no indexable word keeps its row, so the rows match the dense index."""
    index = LexicalIndex.build(["the of and", "Rafah talks", "---", "Rafah again"])
    assert index.size == 4
    assert set(rows(index.search("Rafah", k=4))) == {1, 3}


def test_scores_use_the_chosen_length_normalisation() -> None:
    """BM25 with k1 1.5 and b 0.6 (chosen by week-fold CV, bench/tune_ranking.py), not bm25s's b 0.75:
    a long chunk that mentions the word once keeps more of its score."""
    texts = ["Rafah crossing", "Rafah " + " ".join(f"filler{i}" for i in range(20)), "Gaza port"]
    lengths = np.array([len(tokenize(t)) for t in texts], dtype=float)
    n, df = len(texts), 2
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5))

    def bm25(k1: float, b: float) -> np.ndarray:
        norm = k1 * (1 - b + b * lengths / lengths.mean())
        return np.array([idf / (1 + norm[i]) if "Rafah" in t else 0.0 for i, t in enumerate(texts)])

    got = LexicalIndex.build(texts).scores(tokenize("Rafah"))
    assert got is not None
    np.testing.assert_allclose(got, bm25(1.5, 0.6), rtol=1e-5)
    assert not np.allclose(got, bm25(1.5, 0.75), rtol=1e-3)  # the check above tells the two apart
