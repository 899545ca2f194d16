"""The project's own error types. Each carries a one-line message meant for a person."""

from __future__ import annotations


class RagError(Exception):
    """Base class: anything the CLI or the app shows as one clear line."""


class IngestError(RagError):
    """A source file could not be read as an article (empty, binary, encrypted, too large...)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class IndexMissingError(RagError):
    """No index where one was expected."""


class IndexMismatchError(RagError):
    """The index on disk was built differently (format, model) or is damaged."""


class QueryError(RagError):
    """A question or filter that cannot be answered as given."""


class IndexBusyError(RagError):
    """Another build holds the index lock."""
