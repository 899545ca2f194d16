"""Find the article text in a document: which paragraphs to keep, as offsets.

Cleaning never rewrites the text. It returns the spans worth indexing, so that every
chunk and quote cut from them is still a verbatim slice of the document text.
"""

from __future__ import annotations

import re
from collections import Counter

from rag.types import Span

# Part of every index's fingerprint: a change to these rules re-chunks the articles.
CLEAN_VERSION = 3  # 3: a line printed twice is kept once, not dropped

# A line that starts the site's footer: everything from here on is boilerplate.
# Only honoured in the second half of a document, so an article that happens to
# contain such a line early loses nothing.
_FOOTER_START = re.compile(
    r"^(most popular|read more:?|you have read \d+ articles? this month\.?|just before you scroll on\.*"
    r"|we recommend to read:?|comments are closed\.?|related articles?:?|recommended:?"
    r"|sign up for our newsletter.*|subscribe to our newsletter.*|share this article:?)$",
    re.IGNORECASE,
)

# Lines that are boilerplate wherever they are.
_BOILERPLATE_LINE = re.compile(
    r"^(register to receive full access to .{1,40}\.?|please register for full access.*"
    r"|you have read (more than )?\d+ articles? this month\.?|comments are closed\.?"
    r"|advertisement|most popular|read more:?|we recommend to read:?"
    r"|become a part of our mission by donating today|thank you\. you are a loyal .{1,40} reader\.?"
    r"|never miss a thing|get the best stories faster with .{1,80})$",
    re.IGNORECASE,
)

# An author's bio line: "Jacob Magid is The Times of Israel's US bureau chief",
# "The All Israel News Staff is a team of journalists in Israel."
_BIO_LINE = re.compile(
    r"^[A-Z][\w.'’-]*(?: [A-Z][\w.'’-]*){0,5} (?:is|are) (?:the |an? )?[^.]{0,80}"
    r"(?:bureau chief|correspondent|reporter|editor|writer|columnist|team of journalists[^.]*)\.?$"
)

# A section label glued to the next words: "newsU.S.-Israel Relations", "Inside story'This isn't ..."
_GLUED_LABEL = re.compile(r"^([A-Za-z][a-z]+(?: [a-z]+){0,2})(?=[A-Z‘'“\"][^\s])")
_MIN_REPEATED_LINE = 40  # shorter repeated lines ("Israel is at war.") are prose: every copy stays


def line_spans(text: str) -> list[Span]:
    """Every non-blank line, trimmed."""
    spans = []
    for match in re.finditer(r"[^\n]+", text):
        start, end = match.start(), match.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append(Span(start, end))
    return spans


def clean_spans(text: str) -> list[Span]:
    """The paragraphs of article text, in order, boilerplate left out and a repeated line kept once.

    Captions stay: they carry facts ("the Philadelphi Corridor, a buffer zone...", where and when a
    photo was taken). A long line printed twice (a caption above and below its photo, a paragraph a
    live page repeats) is kept the first time only; dropping both copies lost those facts."""
    lines = line_spans(text)
    counts = Counter(text[s.start : s.end] for s in lines)
    kept: list[Span] = []
    seen: set[str] = set()
    half = len(text) // 2
    for number, span in enumerate(lines):
        line = text[span.start : span.end]
        if span.start >= half and _FOOTER_START.match(line):
            break
        if _BOILERPLATE_LINE.match(line) or _BIO_LINE.match(line):
            continue
        if counts[line] > 1 and len(line) >= _MIN_REPEATED_LINE:
            if line in seen:
                continue  # printed again: once is enough
            seen.add(line)
        if number < 3:
            glued = _GLUED_LABEL.match(line)
            if glued and glued.end() < len(line):
                # The label is the site's section name, not article text: keep what follows it.
                kept.append(Span(span.start + glued.end(), span.end))
                continue
        kept.append(span)
    if not kept and lines:
        # Never lose a whole document to the rules above.
        return lines
    return kept
