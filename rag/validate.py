"""The public functions' arguments, checked before any work: each function here returns the
value in the form the library uses, or raises a one-line QueryError (the question and its
filters) or ArgumentError (paths, settings, flags) that says what was wrong.

Decisions a caller may rely on:
  - `history=None` means no history; a single string is one earlier question.
  - `outlets=None` means every outlet; a single string is one outlet name (not its letters);
    an empty list is refused ("no outlets given"), since it most likely means a filter went wrong.
  - `k` is a whole number >= 0 (an int or anything with __index__, but not a bool or a string).
  - `as_of`, `since`, `until` are ISO dates or datetimes (str, date or datetime); None or "" means
    not given (as_of: today). "2024-13-45" is refused with one line.
  - paths (`index_dir`, `sources`) are str or os.PathLike; bytes and other types are refused, and
    so are names that are not UTF-8 (the index stores paths as UTF-8 text).
"""

from __future__ import annotations

import operator
import os
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import ArgumentError, IngestError, QueryError

if TYPE_CHECKING:
    from rag.index import BuildSettings

_SURROGATE = re.compile("[\ud800-\udfff]")
NAME_MAX = 255  # bytes in one path component on the usual Linux, macOS and Windows filesystems
PATH_MAX = 4095


def is_text(value: str) -> bool:
    """False for a string with lone surrogates: bytes a shell passed that are not UTF-8
    (`rag ask $'\\xff'`), or broken JSON escapes. Tokenizers and encoders fail on them."""
    return _SURROGATE.search(value) is None


def question(value: object) -> str:
    if not isinstance(value, str):
        raise QueryError(f"the question must be text, not {_kind(value)}")
    if not is_text(value):
        raise QueryError("the question has bytes that are not UTF-8 text; type it again")
    return value


def k(value: object) -> int:
    """How many passages: a whole number, 0 or more."""
    if isinstance(value, bool | str | bytes):  # True is 1 and "5" looks like 5: both are caller mistakes
        raise QueryError(f"k must be a whole number of passages, not {_kind(value)}")
    try:
        n = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise QueryError(f"k must be a whole number of passages, not {_kind(value)}") from None
    if n < 0:
        raise QueryError(f"k must be 0 or more, not {_kind(n)}")
    return n


def history(value: object) -> tuple[str, ...]:
    """Earlier questions of the conversation, oldest first."""
    if value is None:
        return ()
    items = _strings(value, "history must be the earlier questions as a list of text")
    for item in items:
        if not is_text(item):
            raise QueryError("an earlier question has bytes that are not UTF-8 text; start a new conversation")
    return items


def outlets(value: object) -> tuple[str, ...] | None:
    """Outlet names to keep, or None for all."""
    if value is None:
        return None
    names = _strings(value, "outlets must be a list of outlet names")
    if not any(name.strip() for name in names):
        raise QueryError("no outlets given; leave the outlet filter out to search every outlet")
    return names


def day(value: object, name: str) -> date | None:
    """A day given as `name` ("as_of", "since", "until"): None when not given."""
    from rag.timeexpr import parse_date

    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str | date | datetime):
        raise QueryError(f"{name} must be an ISO date such as 2024-04-01, not {_kind(value)}")
    if isinstance(value, str) and not is_text(value):
        raise QueryError(f"{name} has bytes that are not UTF-8 text")
    return parse_date(value, name)


def build_dir(value: object) -> Path:
    """An index folder to write: not a file, and not inside one."""
    directory = path(value, "index_dir")
    for place in (directory, *directory.parents):
        try:
            if place.is_dir():
                break
            if place.exists() or place.is_symlink():
                raise ArgumentError(f"{place} is not a folder; choose another index directory")
        except OSError as exc:
            raise ArgumentError(f"cannot use {directory} as the index directory ({exc.strerror or exc})") from exc
    return directory


def sources(value: object) -> list[str | Path]:
    """Files and folders to index: one path, or a list of them; each must exist."""
    if isinstance(value, str | os.PathLike):
        value = [value]
    if isinstance(value, bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        raise ArgumentError(f"sources must be a list of files and folders, not {_kind(value)}")
    found: list[str | Path] = []
    for item in value:
        checked = path(item, "each source")
        try:
            os.stat(checked)
        except (FileNotFoundError, NotADirectoryError):
            raise IngestError(str(checked), "no such file or folder; the index was not changed") from None
        except OSError as exc:
            reason = f"cannot read it ({exc.strerror or exc}); the index was not changed"
            raise IngestError(str(checked), reason) from exc
        found.append(item if isinstance(item, str) else checked)
    if not found:
        raise ArgumentError("no sources given; name the files or folders to index")
    return found


def flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ArgumentError(f"{name} must be True or False, not {_kind(value)}")
    return value


def path(value: object, name: str) -> Path:
    """A path the operating system can take: text, no NUL, not empty, not over the length limits."""
    if not isinstance(value, str | os.PathLike):
        raise ArgumentError(f"{name} must be a path (text), not {_kind(value)}")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise ArgumentError(f"{name} must be a path as text, not bytes")
    if not text.strip():
        raise ArgumentError(f"{name} is empty; give a file or folder path")
    if "\x00" in text:
        raise ArgumentError(f"{name} {text!r} has a NUL character; no file can be called that")
    if not is_text(text):  # the index keeps paths as UTF-8 JSON, and FAISS takes only UTF-8 names
        raise ArgumentError(f"{name} {text!r} is not UTF-8 text; rename it")
    raw = os.fsencode(text)
    if len(raw) > PATH_MAX or any(len(part) > NAME_MAX for part in raw.split(b"/")):
        raise ArgumentError(f"{name} {text[:60]!r}... is longer than a path can be")
    return Path(text)


def _strings(value: object, message: str) -> tuple[str, ...]:
    """A single string as a one-item tuple; a list (or other iterable) of strings as a tuple."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        raise QueryError(f"{message}, not {_kind(value)}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise QueryError(f"{message}; one item is {_kind(item)}")
    return items


def _kind(value: object) -> str:
    """How to name a wrong value in a message: its type, and the value when it is short."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        try:
            shown = repr(value)
        except ValueError:  # an int of more digits than Python will print
            return "a very long int"
        return f"{type(value).__name__} {shown[:40]}{'...' if len(shown) > 40 else ''}"
    return f"a {type(value).__name__}"


def settings(value: object) -> BuildSettings | None:
    from rag.index import BuildSettings  # here: rag.index imports what imports this module

    if value is not None and not isinstance(value, BuildSettings):
        raise ArgumentError(f"settings must be a rag.index.BuildSettings, not {_kind(value)}")
    return value
