"""Reads an index of the monolithic formats 1 and 2 (one set of files per build) just enough to
reuse its vectors: an update to the segmented format then embeds nothing it embedded before.

    manifest.json                        format_version 1 or 2, generation N, model, settings, files
    documents-N.jsonl                    one article per line (title and text)
    chunks-N.jsonl                       one chunk per line (doc_id, text)
    vectors-N.npy                        float32, row i = chunk line i
    sentences-N.jsonl                    {doc_id, first, spans} (when the manifest lists it)
    sentence-vectors-N.npy               float16, rows of those spans

Nothing else of it is read (FAISS and BM25 are rebuilt from the vectors and texts); the first
commit of the new format removes these files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.store import MANIFEST

LEGACY_FORMATS = (1, 2)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LegacyIndex:
    directory: Path
    model: str
    settings: dict[str, Any]
    titles: dict[str, str]  # doc_id -> title
    texts: dict[str, str]  # doc_id -> the text sentence offsets point into
    chunk_texts: list[tuple[str, str]]  # (doc_id, chunk text), row i = vectors row i
    vectors: np.ndarray  # float32 [chunks x dimension], memory-mapped
    sentence_spans: dict[str, tuple[int, np.ndarray]]  # doc_id -> (first row, [n x 2] offsets)
    sentence_vectors: np.ndarray  # float16 [sentences x dimension], memory-mapped

    def sentence_texts(self) -> Iterator[tuple[str, int]]:
        """(sentence text, row in sentence_vectors) of every stored sentence."""
        for doc_id, (first, spans) in self.sentence_spans.items():
            text = self.texts.get(doc_id)
            if text is None:
                continue
            for i, (start, end) in enumerate(spans.tolist()):
                yield text[start:end], first + i


def is_legacy(index_dir: Path) -> bool:
    """Whether `index_dir` holds an index of a monolithic format."""
    try:
        data = json.loads((Path(index_dir) / MANIFEST).read_text(encoding="utf-8"))
        return int(data["format_version"]) in LEGACY_FORMATS and "files" in data and not data.get("segments")
    except (OSError, ValueError, KeyError, TypeError):
        return False


def read_legacy(index_dir: Path) -> LegacyIndex | None:
    """The texts and vectors of a monolithic index, or None when it is not one or is unreadable
    (the update then embeds everything, as a new build would)."""
    index_dir = Path(index_dir)
    if not is_legacy(index_dir):
        return None
    try:
        manifest = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))
        n = int(manifest["generation"])
        files = manifest["files"]
        titles: dict[str, str] = {}
        texts: dict[str, str] = {}
        with (index_dir / f"documents-{n}.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                doc = json.loads(line)
                titles[doc["doc_id"]] = str(doc.get("title", ""))
                texts[doc["doc_id"]] = str(doc["text"])
        chunk_texts: list[tuple[str, str]] = []
        with (index_dir / f"chunks-{n}.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                chunk_texts.append((str(row["doc_id"]), str(row["text"])))
        vectors = np.load(index_dir / f"vectors-{n}.npy", allow_pickle=False, mmap_mode="r")
        dimension = int(vectors.shape[1]) if vectors.ndim == 2 else int(manifest.get("dimension", 0))
        spans: dict[str, tuple[int, np.ndarray]] = {}
        sentence_vectors = np.zeros((0, dimension), np.float16)
        if f"sentences-{n}.jsonl" in files:
            with (index_dir / f"sentences-{n}.jsonl").open(encoding="utf-8") as handle:
                for line in handle:
                    row = json.loads(line)
                    offsets = np.asarray(row["spans"], dtype=np.int64).reshape(-1, 2)
                    spans[str(row["doc_id"])] = (int(row["first"]), offsets)
            sentence_vectors = np.load(index_dir / f"sentence-vectors-{n}.npy", allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("index in %s of format 1/2 is unreadable (%s): embedding again", index_dir, exc)
        return None
    if len(chunk_texts) != len(vectors):
        return None
    return LegacyIndex(
        index_dir,
        str(manifest["model"]),
        dict(manifest.get("settings", {})),
        titles,
        texts,
        chunk_texts,
        vectors,
        spans,
        sentence_vectors,
    )
