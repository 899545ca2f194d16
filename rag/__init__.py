"""Question answering over news articles that quotes its sources.

The public API (see ../shared/API.md): build_index, retrieve, ask; document for the text offsets index.
"""

from __future__ import annotations

from rag.api import ask, build_index, default_index_dir, document, retrieve
from rag.errors import IndexMismatchError, IndexMissingError, IngestError, QueryError, RagError
from rag.types import Answer, Chunk, Document, Passage, Quote

__all__ = [
    "Answer",
    "Chunk",
    "Document",
    "IndexMismatchError",
    "IndexMissingError",
    "IngestError",
    "Passage",
    "QueryError",
    "Quote",
    "RagError",
    "ask",
    "build_index",
    "default_index_dir",
    "document",
    "retrieve",
]
