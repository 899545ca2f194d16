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
# Newspaper nouns that readers use alone for a paper: "the Post", "the Journal".
_MASTHEAD = frozenset(
    [
        "Post",
        "Times",
        "Journal",
        "Herald",
        "Tribune",
        "Telegraph",
        "Guardian",
        "Globe",
        "Chronicle",
        "Gazette",
        "Observer",
        "Independent",
        "Monitor",
        "Examiner",
        "Inquirer",
        "Economist",
        "Forward",
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
    lone_words: dict[str, str] = {}
    for outlet in outlets:
        bare = re.sub(r"^the\s+", "", outlet.strip(), flags=re.IGNORECASE)
        words = bare.split()
        if not words:
            continue
        # The full name, with or without "The", flexible spaces. A name of common words only
        # ("Times of Israel", "All Israel News") must be written as the outlet writes it, or all
        # in lower or upper case: "all Israel news outlets" and "times of Israel's" are prose.
        if all(w.lower() in _GENERIC for w in words):
            forms = dict.fromkeys([bare, bare.lower(), bare.upper()])
            body = "|".join(r"\s+".join(re.escape(w) for w in form.split()) for form in forms)
            patterns.append((re.compile(rf"(?<!\w)(?:(?i:the)\s+)?(?:{body})(?!\w)"), outlet))
        else:
            body = r"\s+".join(re.escape(w) for w in words)
            patterns.append((re.compile(rf"(?<!\w)(?:the\s+)?{body}(?!\w)", re.IGNORECASE), outlet))
        if len(words) >= 2:
            # Initials with at least two capitals: "ToI", "TOI", "AIN"; not "toi", "Ain't" or "as".
            initials = "".join(w[0] for w in words)
            patterns.append((re.compile(rf"(?<!\w)(?=\w*[A-Z]\w*[A-Z])(?i:{re.escape(initials)})(?!\w)"), outlet))
            # The masthead noun on its own: "the Post" for The Jerusalem Post. Only a masthead noun:
            # "the Israel-Hamas war" or "the Jerusalem talks" name no outlet.
            if words[-1] in _MASTHEAD:
                lone_words.setdefault(words[-1], outlet)
                if lone_words[words[-1]] != outlet:
                    lone_words[words[-1]] = ""  # two outlets share it: it names neither
    for word, outlet in lone_words.items():
        if outlet:
            # Capitalised, after "the": "the Post", "The Post's"; case-sensitive to skip prose.
            patterns.append((re.compile(rf"(?<![\w])[Tt]he\s+{re.escape(word)}(?![\w-])"), outlet))
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
