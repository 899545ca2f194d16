"""rag.clean: boilerplate, captions and glued labels go; every sentence of the article body stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.clean import clean_spans, line_spans
from rag.types import Span

SEEDS = Path(__file__).parent / "data" / "seeds"
SEED_NAMES = sorted(p.name for p in SEEDS.glob("*.txt"))


def seed(name: str) -> str:
    return (SEEDS / name).read_text(encoding="utf-8")


def kept_text(text: str, spans: list[Span]) -> list[str]:
    return [text[s.start : s.end] for s in spans]


def is_kept(text: str, spans: list[Span], needle: str) -> bool:
    """`needle` lies wholly inside one kept span."""
    start = text.index(needle)
    return any(s.start <= start and start + len(needle) <= s.end for s in spans)


def touches_kept(text: str, spans: list[Span], needle: str) -> bool:
    """Some character of some occurrence of `needle` is inside a kept span."""
    start = text.find(needle)
    while start != -1:
        if any(s.start < start + len(needle) and start < s.end for s in spans):
            return True
        start = text.find(needle, start + 1)
    return False


# Lines of the seeds that are not article text: paywall, donation appeal, "read more", author bio,
# Everything else must be kept whole (the glued label lines in part), captions included: they carry
# facts ("the Philadelphi Corridor, a buffer zone..."); a caption printed twice is kept once.
NOT_BODY = {
    "000_7d35695503e2d372.txt": [
        "You have read 3 articles this month.",
        "Register to receive full access to JNS.",
        "Just before you scroll on...",
        "Israel is at war.",
        "JNS is combating the stream of misinformation",
        "The support you provide allows our journalists",
        "Every contribution, big or small",
        "Become a part of our mission by donating today",
        "Thank you. You are a loyal JNS Reader.",
        "You have read more than 10 articles this month.",
        "Please register for full access to continue reading",
        "Never miss a thing",
        "Get the best stories faster with JNS",
    ],
    "001_d7804dc54d9443d6.txt": [
        "Jacob Magid is The Times of Israel's US bureau chief",
        "Most Popular",
        "read more:",
    ],
    "002_99735604145fecb3.txt": [
        "We recommend to read:",
        "The All Israel News Staff is a team of journalists in Israel.",
    ],
    "003_ce02a99fd4690d2e.txt": [
        "Jacob Magid is The Times of Israel's US bureau chief",
        "Most Popular",
        "read more:",
    ],
    "004_70201ae4656567ec.txt": ["Comments are closed."],
}

# Body sentences picked from each seed: the first, the last before the footer, and awkward ones
# (subheads, quotes, lines next to captions, the "deal.A senior" glued sentence).
BODY_SENTENCES = {
    "000_7d35695503e2d372.txt": [
        "US, Israel ‘share objective’ of defeating Hamas in Rafah",
        "The two sides held a virtual meeting on Monday about the pending military operation",
        "The United States and Israel agreed during a virtual meeting on Monday that Hamas must be defeated",
        "According to Israeli estimates, the final four Hamas battalions, consisting of some 3,000 fighters",
        "“The two sides over the course of two hours had a constructive engagement on Rafah.",
        "Gen. Charles Q. Brown Jr., chairman of the U.S. Joint Chiefs of Staff",
        "Many of the 134 hostages still in the hands of Hamas in Gaza",
        "Around three-quarters of Jewish Israelis and a majority of Israelis overall support expanding",
    ],
    "001_d7804dc54d9443d6.txt": [
        "US says Israel agreed to take concerns over Rafah op into account at virtual meeting",
        "White House says Israel sides will hold follow-up sit-down in person",
        "Top Israeli and US officials held a virtual meeting Monday",
        "Israel argues that an operation in Rafah is essential",
        "it says it will evacuate the over one million Palestinians sheltering in the southern Gaza city",
        "at least some of the 130 hostages that are still being held in the territory.",
        "Of the remaining hostages, the IDF has confirmed that at least 34 were killed",
    ],
    "002_99735604145fecb3.txt": [
        "Washington says Israel will consider US humanitarian concerns ahead of expected major Rafah",
        "Hamas is believed to have a sizable force of between 4,000 and 8,000 operatives in Rafah area",
        "Top American and Israeli officials exchanged views on a potential major Israeli military operation",
        "Hamas is believed to have a sizable force of between 4,000 and 8,000 operatives in the Rafah area.",
        "“It will happen even if Israel is forced to fight alone.",
        "Senior Israeli government officials have attempted to ease diplomatic tensions with Cairo",
    ],
    "003_ce02a99fd4690d2e.txt": [
        "US to pitch Israel on securing Egypt-Gaza border as alternative to ‘smashing into Rafah’",
        "US officials tell ToI next week’s meeting with visiting Israeli delegation",
        "The US will present alternative plans for how Israel can continue pursuing Hamas",
        "“If Israel smashes into Rafah with all the civilian casualties",
        "The number of aid trucks coming into Gaza from the yet-to-be-established maritime corridor",
        "“Israel cleared Shifa once.",
        "That is what the president talked to the prime minister about today,” Sullivan said.",
    ],
    "004_70201ae4656567ec.txt": [
        "Rafah op will harm your security, isolate you, US tells Israeli officials",
        "Israel’s security will be harmed by a military operation in Rafah",
        "the over 1.3 million civilians in Rafah",
        "Pushing forward for Rafah operations",
        "how important it is to have this conversation.”The US has been “very clear",
        "as part of the deal.A senior political source said the proposal on the table",
        "“Do they want six weeks of humanitarian respite",
        "Maariv contributed to this report.",
    ],
}


@pytest.mark.parametrize("name", SEED_NAMES)
def test_spans_are_ordered_disjoint_trimmed_lines(name: str) -> None:
    text = seed(name)
    spans = clean_spans(text)
    assert spans
    for span in spans:
        assert 0 <= span.start < span.end <= len(text)
        piece = text[span.start : span.end]
        assert piece == piece.strip()
        assert "\n" not in piece
    for a, b in zip(spans, spans[1:], strict=False):
        assert a.end <= b.start


@pytest.mark.parametrize("name", SEED_NAMES)
def test_body_sentences_are_kept(name: str) -> None:
    text = seed(name)
    spans = clean_spans(text)
    for sentence in BODY_SENTENCES[name]:
        assert is_kept(text, spans, sentence), sentence


@pytest.mark.parametrize("name", SEED_NAMES)
def test_boilerplate_and_captions_are_dropped(name: str) -> None:
    text = seed(name)
    spans = clean_spans(text)
    for junk in NOT_BODY[name]:
        assert junk in text
        assert not touches_kept(text, spans, junk), junk


@pytest.mark.parametrize("name", SEED_NAMES)
def test_every_other_line_is_kept_whole(name: str) -> None:
    """Nothing but the listed boilerplate and second copies is lost: each remaining line is one kept span."""
    text = seed(name)
    spans = {(s.start, s.end) for s in clean_spans(text)}
    glued = {"000_7d35695503e2d372.txt": "newsU.S.", "003_ce02a99fd4690d2e.txt": "Inside story"}
    seen: set[str] = set()
    for line in line_spans(text):
        content = text[line.start : line.end]
        if any(content.startswith(junk) for junk in NOT_BODY[name]) or content in seen:
            continue
        seen.add(content)
        if name in glued and content.startswith(glued[name]):
            continue
        assert (line.start, line.end) in spans, content


def test_glued_section_label_is_split_off() -> None:
    text = seed("000_7d35695503e2d372.txt")
    first = clean_spans(text)[0]
    assert text[first.start : first.end] == "U.S.-Israel Relations"
    assert first.start == len("news")

    text = seed("003_ce02a99fd4690d2e.txt")
    first = clean_spans(text)[0]
    assert text[first.start : first.end] == "'This isn't just us saying, No you can't do it'"
    assert not touches_kept(text, clean_spans(text), "Inside story")


# Captions each seed prints twice (above and below the photo): kept the first time only.
CAPTIONS_TWICE = {
    "000_7d35695503e2d372.txt": "Members of Izz al-Din al-Qassam Brigades",
    "001_d7804dc54d9443d6.txt": "This combination photo shows US President Joe Biden",
    "003_ce02a99fd4690d2e.txt": "Displaced Palestinians walk next to the border fence",
}


@pytest.mark.parametrize("name", sorted(CAPTIONS_TWICE))
def test_seed_caption_printed_twice_is_kept_once(name: str) -> None:
    text, needle = seed(name), CAPTIONS_TWICE[name]
    first = text.find(needle)
    second = text.find(needle, first + 1)
    assert first != -1 and second != -1
    spans = clean_spans(text)
    kept = [s for s in spans if s.start <= first < s.end]
    assert kept and text[kept[0].start : kept[0].end].startswith(needle)
    assert not any(s.start <= second < s.end for s in spans)


def test_repeated_caption_kept_once_and_short_repeated_line_kept_every_time() -> None:
    caption = "Palestinians walk along a road in Rafah, southern Gaza Strip, after an airstrike on the city"
    text = (
        f"Headline of the piece\n\n{caption}\n{caption}\n\n"
        "Israel is at war.\n\nThe talks went on.\n\nIsrael is at war.\n\nThe end of the story.\n"
    )
    kept = kept_text(text, clean_spans(text))
    assert kept.count(caption) == 1
    assert kept.count("Israel is at war.") == 2  # short lines repeat in prose; not captions
    assert kept == [
        "Headline of the piece",
        caption,
        "Israel is at war.",
        "The talks went on.",
        "Israel is at war.",
        "The end of the story.",
    ]


def test_footer_marker_only_cuts_in_second_half() -> None:
    early = "Headline\n\nRead more:\n\n" + "\n\n".join(f"Paragraph {i} of the article goes on." for i in range(10))
    kept = kept_text(early, clean_spans(early))
    assert "Read more:" not in kept
    assert kept[-1] == "Paragraph 9 of the article goes on."  # nothing after an early marker is lost

    late = (
        "\n\n".join(f"Paragraph {i} of the article goes on." for i in range(10))
        + "\n\nMost Popular\nLink one\nLink two\n"
    )
    kept = kept_text(late, clean_spans(late))
    assert kept[-1] == "Paragraph 9 of the article goes on."
    assert "Link one" not in kept


def test_caption_printed_once_is_kept() -> None:
    caption = "Palestinians line up for a meal in Rafah, Gaza Strip, on Tuesday, March 12, 2024. (AP/Fatima Shbair)"
    text = f"Headline\n\nThe sides met on Monday.\n\n{caption}\n\nThe talks will continue next week.\n"
    assert kept_text(text, clean_spans(text)) == [
        "Headline",
        "The sides met on Monday.",
        caption,
        "The talks will continue next week.",
    ]


def test_seed_captions_printed_once_are_kept() -> None:
    text = seed("003_ce02a99fd4690d2e.txt")
    spans = clean_spans(text)
    assert is_kept(text, spans, "a buffer zone that separates Egypt from Israel and the Palestinian Gaza Strip")
    assert touches_kept(text, spans, "Displaced Palestinians walk next to the border fence")  # printed twice: once


def test_a_document_is_never_lost_entirely() -> None:
    text = "Comments are closed.\nAdvertisement\n"
    assert kept_text(text, clean_spans(text)) == ["Comments are closed.", "Advertisement"]
    assert clean_spans("") == []
    assert clean_spans("\n \n\t\n") == []


def test_crlf_and_indentation_are_trimmed_out_of_spans() -> None:
    text = "  Headline  \r\n\r\n\tThe sides met on Monday.\r\n"
    assert kept_text(text, clean_spans(text)) == ["Headline", "The sides met on Monday."]
