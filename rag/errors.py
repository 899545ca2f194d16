"""The project's own error types. Each carries a one-line message meant for a person."""

from __future__ import annotations

import re

# Characters that would break a line or mislead a terminal when a name (a file name, an outlet,
# a question) is shown: control characters, line and paragraph separators, bidi overrides, and
# lone surrogates (bytes of a file name that are not UTF-8).
_UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str) -> str:
    """`text` with those characters escaped (\\n, \\x1b, \\u202e; an undecodable byte as \\xff),
    so that it prints as one honest line."""
    return _UNSHOWABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


class RagError(Exception):
    """Base class: anything the CLI or the app shows as one clear line."""

    def __str__(self) -> str:
        # Messages name files, outlets and questions: none of them may add a line.
        return one_line(super().__str__())


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


class ArgumentError(RagError):
    """An argument of the wrong type or form: index_dir=3, sources=[], an index folder that is a file."""


class StoreUnavailableError(RagError):
    """The index's Qdrant server could not be reached, or refused a request."""
