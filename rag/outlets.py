"""Outlet names: compared loosely, and found in a question ("According to JNS", "the Post", "ToI")."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Words too common in outlet names to name one on their own.
_GENERIC = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "and",
        "news",
        "daily",
        "times",
        "post",
        "israel",
        "world",
        "today",
        "online",
        "network",
        "media",
        "press",
        "herald",
        "journal",
        "tribune",
        "report",
        "weekly",
        "all",
        "new",
    ]
)
_NAMING = r"(?:according to|as reported by|reported by|report(?:ed|s)? in|says?|said|in|by|from|did|does|do)"


def outlet_key(name: str) -> str:
    """Case, a leading 'The' and punctuation aside: 'The Times of Israel' == 'times of israel'."""
    s = re.sub(r"\s+", " ", name).strip().lower()
    s = re.sub(r"^the\s+", "", s)
    return re.sub(r"[^a-z0-9]+", "", s)


@dataclass(frozen=True)
class OutletMention:
    outlet: str
    start: int
    end: int


def _aliases(outlets: Iterable[str]) -> list[tuple[re.Pattern[str], str]]:
    outlets = list(dict.fromkeys(outlets))
    patterns: list[tuple[re.Pattern[str], str]] = []
    words_by_outlet: dict[str, list[str]] = {}
    for outlet in outlets:
        bare = re.sub(r"^the\s+", "", outlet.strip(), flags=re.IGNORECASE)
        # The full name, with or without "The", any case, flexible spaces.
        body = r"\s+".join(re.escape(w) for w in bare.split())
        patterns.append((re.compile(rf"(?<!\w)(?:the\s+)?{body}(?!\w)", re.IGNORECASE), outlet))
        words = bare.split()
        if len(words) >= 2:
            # Initials, case as written in the question: "ToI", "TOI", "JPost" is not guessed.
            initials = "".join(w[0] for w in words)
            patterns.append((re.compile(rf"(?<!\w){re.escape(initials)}(?!\w)", re.IGNORECASE), outlet))
        words_by_outlet[outlet] = [w for w in words if w.lower() not in _GENERIC and w[0].isupper()]
        # A distinctive last word used on its own: "the Post" for The Jerusalem Post.
        last = words[-1]
        if len(words) >= 2 and last[0].isupper():
            words_by_outlet[outlet].append(last)
    counts: dict[str, int] = {}
    for words in words_by_outlet.values():
        for w in set(words):
            counts[w.lower()] = counts.get(w.lower(), 0) + 1
    for outlet, words in words_by_outlet.items():
        for w in set(words):
            if counts[w.lower()] == 1:
                # Capitalised, after "the": "the Post", "The Post's"; case-sensitive to skip prose.
                patterns.append((re.compile(rf"(?<![\w])[Tt]he\s+{re.escape(w)}(?!\w)"), outlet))
    return patterns


def find_outlets(question: str, outlets: Iterable[str]) -> list[OutletMention]:
    """Outlets of the index that the question names, in order of appearance."""
    mentions: list[OutletMention] = []
    taken: list[tuple[int, int]] = []
    for pattern, outlet in _aliases(outlets):
        for match in pattern.finditer(question):
            span = (match.start(), match.end())
            if any(a < span[1] and span[0] < b for a, b in taken):
                continue
            taken.append(span)
            mentions.append(OutletMention(outlet, *span))
    return sorted(mentions, key=lambda m: m.start)


def strip_outlet_phrases(question: str, mentions: list[OutletMention]) -> str:
    """The question without "According to X," and similar, so the name does not steer the search."""
    text = question
    for mention in sorted(mentions, key=lambda m: -m.start):
        before = text[: mention.start]
        lead = re.search(rf"{_NAMING}\s*$", before, re.IGNORECASE)
        cut_from = (
            lead.start()
            if lead and lead.group().lower().startswith(("according", "as reported", "reported"))
            else mention.start
        )
        after = text[mention.end :]
        after = re.sub(r"^['’]s\b", "", after)
        text = text[:cut_from] + after
    text = re.sub(r"^\s*[,;:]\s*", "", text)
    return re.sub(r"\s+", " ", text).strip() or question
