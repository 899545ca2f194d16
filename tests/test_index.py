"""rag/index.py: incremental builds, what the BuildReport says, and what ends up retrievable."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from rag.chunk import ChunkSettings
from rag.embed import HashEmbedder
from rag.errors import IndexMismatchError, IngestError, QueryError
from rag.index import BuildSettings, build_index
from rag.retrieve import get_retriever
from rag.store import FORMAT_VERSION, MANIFEST, load_index, read_manifest

if TYPE_CHECKING:
    from conftest import CountingEmbedder

CORPUS_FILES = sorted(p.name for p in (Path(__file__).resolve().parents[1] / "corpus").glob("*.txt"))

JNS = "000_7d35695503e2d372.txt"  # the only JNS article; the only one with "40,000 tents"
TOI = "001_d7804dc54d9443d6.txt"
AIN = "002_99735604145fecb3.txt"

HTML_PARAGRAPHS = [
    "The harbour authority in Port Vellmar confirmed on Tuesday that the new quarantine berth for grain "
    "freighters will open next spring, after two years of delays caused by dredging disputes.",
    "Officials said the berth, built at a cost of 48 million euros, can hold three freighters at once and "
    "will cut waiting times for inspections by half.",
    "Local fishermen welcomed the announcement but warned that the dredging had already damaged oyster beds "
    "along the northern breakwater.",
]


def html_page(outlet: str = "Harbour Courier") -> str:
    paragraphs = "".join(f"<p>{p}</p>\n" for p in HTML_PARAGRAPHS)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Quarantine berth to open in Port Vellmar | {outlet}</title>
<meta property="og:site_name" content="{outlet}">
<meta property="og:title" content="Quarantine berth to open in Port Vellmar">
<meta name="author" content="Mira Lind">
</head><body>
<nav><a href="/">Home</a> <a href="/ports">Ports</a></nav>
<article><h1>Quarantine berth to open in Port Vellmar</h1>
{paragraphs}</article>
<footer>All rights reserved.</footer>
</body></html>
"""


def make_pdf(pages: list[list[str]], info: dict[str, str]) -> bytes:
    """A minimal, valid PDF with a text layer: one Helvetica line per string, one page per list."""

    def literal(s: str) -> str:
        return "(" + s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"

    kids = " ".join(f"{5 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        ("<< " + " ".join(f"/{k} {literal(v)}" for k, v in info.items()) + " >>").encode("latin-1"),
    ]
    for i, lines in enumerate(pages):
        stream = "\n".join(["BT", "/F1 9 Tf", "12 TL", "40 760 Td", *(f"{literal(s)} Tj T*" for s in lines), "ET"])
        data = stream.encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {6 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(data), data))
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def pdf_pages() -> list[list[str]]:
    filler = [
        f"Sentence {n} of the council minutes records a routine vote on street lighting and park benches."
        for n in range(1, 9)
    ]
    page1 = ["The Lakeside council met on Thursday to discuss the aardvarkium reservoir budget.", *filler]
    page2 = [*filler, "Finally the council approved the zyzzyvance tunnel for cyclists by seven votes to two."]
    return [page1, page2]


def add_paragraph(path: Path, paragraph: str) -> None:
    """A new paragraph in the body of an article (text after the site footer is not article text)."""
    text = path.read_text(encoding="utf-8")
    anchor = "Israel has been facing increasing international pressure"
    assert anchor in text
    path.write_text(text.replace(anchor, f"{paragraph}\n\n{anchor}", 1), encoding="utf-8")


def build(corpus_dir: Path, index_dir: Path, embedder: CountingEmbedder | None = None, **kwargs):
    return build_index([corpus_dir], index_dir, embedder=embedder or HashEmbedder(), **kwargs)


def search(index_dir: Path, query: str, k: int = 10, **kwargs):
    return get_retriever(index_dir).search(query, k=k, **kwargs)


def generation(index_dir: Path) -> int:
    return read_manifest(index_dir).generation


def indexed_sources(index_dir: Path) -> set[str]:
    return {d["source"] for d in read_manifest(index_dir).documents.values()}


def test_first_build_reports_everything_added(corpus_dir: Path, index_dir: Path, embedder: CountingEmbedder) -> None:
    report = build(corpus_dir, index_dir, embedder)
    assert sorted(Path(s).name for s in report.added) == CORPUS_FILES
    assert not (report.updated or report.removed or report.unchanged or report.skipped or report.rejected)
    assert (
        report.documents == 5
        and report.embedded == report.chunks == len(embedder.texts) - report.sentences_embedded > 0
    )
    json.dumps(report.as_dict())  # the CLI prints it
    assert "5 added" in report.summary()


def test_rebuild_with_nothing_changed_embeds_nothing(
    fake_index: Path, corpus_dir: Path, embedder: CountingEmbedder
) -> None:
    before = generation(fake_index)
    manifest_stat = (fake_index / MANIFEST).stat()
    report = build(corpus_dir, fake_index, embedder)
    assert report.embedded == 0 and embedder.calls == []
    assert sorted(Path(s).name for s in report.unchanged) == CORPUS_FILES
    assert not (report.added or report.updated or report.removed)
    assert generation(fake_index) == before
    assert (fake_index / MANIFEST).stat().st_ino == manifest_stat.st_ino  # not even rewritten
    assert report.chunks == load_index(fake_index).size


def test_changed_file_is_reembedded_alone(fake_index: Path, corpus_dir: Path, embedder: CountingEmbedder) -> None:
    before = generation(fake_index)
    path = corpus_dir / TOI
    add_paragraph(path, "The quokka delegation arrived late to the talks.")
    report = build(corpus_dir, fake_index, embedder)
    assert report.updated == (str(path),)
    assert not (report.added or report.removed) and len(report.unchanged) == 4
    stored = load_index(fake_index)
    doc = next(d for d in stored.documents.values() if d.source == str(path))
    doc_chunks = [c for c in map(stored.chunk, stored.chunk_ids()) if c.doc_id == doc.doc_id]
    chunk_texts = [t for t in embedder.texts if t.startswith(doc.title + "\n")]
    # Only what changed is embedded again: the chunk and the sentence that hold the new paragraph.
    assert 0 < report.embedded == len(chunk_texts) < len(doc_chunks)
    assert all("quokka" in t for t in embedder.texts)
    assert report.sentences_embedded == len(embedder.texts) - len(chunk_texts) == 1
    assert generation(fake_index) == before + 1
    hits = [p for p in search(fake_index, "quokka delegation") if "quokka" in p.text]
    assert hits and hits[0].source == str(path) and hits[0].outlet == "The Times of Israel"


def test_removed_file_disappears_from_retrieval(fake_index: Path, corpus_dir: Path) -> None:
    assert any("40,000 tents" in p.text for p in search(fake_index, "40,000 tents from China"))
    (corpus_dir / JNS).unlink()
    report = build(corpus_dir, fake_index)
    assert report.removed == (str(corpus_dir / JNS),) and report.embedded == 0
    assert str(corpus_dir / JNS) not in indexed_sources(fake_index)
    passages = search(fake_index, "40,000 tents from China", k=50)
    assert passages and all(p.source != str(corpus_dir / JNS) and "40,000 tents" not in p.text for p in passages)
    with pytest.raises(QueryError, match="JNS"):
        search(fake_index, "tents", outlets=["JNS"])


@pytest.mark.parametrize("copy_name", ["zzz_copy.txt", "0000_copy.txt"], ids=["copy-sorts-last", "copy-sorts-first"])
def test_copy_under_second_name_is_indexed_once(
    fake_index: Path, corpus_dir: Path, embedder: CountingEmbedder, copy_name: str
) -> None:
    before = generation(fake_index)
    copy = corpus_dir / copy_name
    shutil.copyfile(corpus_dir / AIN, copy)
    report = build(corpus_dir, fake_index, embedder)
    assert report.skipped == (str(copy),)
    assert not (report.added or report.updated or report.removed) and report.embedded == 0 and not embedder.calls
    assert report.documents == 5 and generation(fake_index) == before
    assert str(copy) not in indexed_sources(fake_index)
    assert any("same article" in w for w in report.warnings)
    sources = [p.source for p in search(fake_index, "sizable force of between 4,000 and 8,000 operatives", k=20)]
    assert str(copy) not in sources and str(corpus_dir / AIN) in sources


def test_identical_files_in_a_fresh_build_are_indexed_once(corpus_dir: Path, index_dir: Path) -> None:
    shutil.copyfile(corpus_dir / AIN, corpus_dir / "zzz_copy.txt")
    report = build(corpus_dir, index_dir)
    assert report.documents == 5 and report.skipped == (str(corpus_dir / "zzz_copy.txt"),)
    texts = [p.text for p in search(index_dir, "sizable force of between 4,000 and 8,000 operatives", k=20)]
    assert len(texts) == len(set(texts))


def test_unreadable_files_are_rejected_and_the_rest_indexed(corpus_dir: Path, index_dir: Path) -> None:
    junk = corpus_dir / "junk.txt"
    junk.write_bytes(bytes(range(256)) * 20)
    empty = corpus_dir / "empty.txt"
    empty.touch()
    report = build(corpus_dir, index_dir)
    rejected = dict(report.rejected)
    assert set(rejected) == {str(junk), str(empty)}
    assert "binary" in rejected[str(junk)] and "empty" in rejected[str(empty)]
    assert report.documents == 5 and indexed_sources(index_dir) == {str(corpus_dir / n) for n in CORPUS_FILES}
    assert "2 rejected" in report.summary()


def test_file_that_becomes_unreadable_keeps_its_previous_version(
    fake_index: Path, corpus_dir: Path, embedder: CountingEmbedder
) -> None:
    path = corpus_dir / JNS
    original = path.read_bytes()
    path.write_bytes(b"\x00\xff\xfe" * 2000)
    report = build(corpus_dir, fake_index, embedder)
    assert dict(report.rejected).keys() == {str(path)} and not report.removed and not embedder.calls
    assert any("40,000 tents" in p.text and p.source == str(path) for p in search(fake_index, "40,000 tents"))

    # ...also when another file changes and a new generation is written.
    add_paragraph(corpus_dir / TOI, "A wombat was seen near the border crossing.")
    report = build(corpus_dir, fake_index, embedder)
    assert report.updated == (str(corpus_dir / TOI),) and str(path) in dict(report.rejected)
    assert str(path) in indexed_sources(fake_index)
    assert any("40,000 tents" in p.text and p.source == str(path) for p in search(fake_index, "40,000 tents"))

    # Repaired: back to normal, and nothing to embed (same content as before).
    path.write_bytes(original)
    calls = len(embedder.calls)
    report = build(corpus_dir, fake_index, embedder)
    assert not report.rejected and str(path) in report.unchanged and len(embedder.calls) == calls


def test_html_and_pdf_are_retrievable_under_their_outlets(fake_index: Path, corpus_dir: Path) -> None:
    html = corpus_dir / "berth.html"
    html.write_text(html_page(), encoding="utf-8")
    pdf = corpus_dir / "minutes.pdf"
    pdf.write_bytes(make_pdf(pdf_pages(), {"Title": "Lakeside council minutes", "Publisher": "Lakeside Ledger"}))
    report = build(corpus_dir, fake_index)
    assert set(report.added) == {str(html), str(pdf)} and not report.rejected

    retriever = get_retriever(fake_index)
    assert {"Harbour Courier", "Lakeside Ledger"} <= set(retriever.outlets)

    hit = next(p for p in search(fake_index, "quarantine berth grain freighters") if "quarantine berth" in p.text)
    assert (hit.outlet, hit.source, hit.title) == (
        "Harbour Courier",
        str(html),
        "Quarantine berth to open in Port Vellmar",
    )
    assert hit.page is None
    assert retriever.stored.documents[hit.doc_id].text[hit.start : hit.end] == hit.text
    only = search(fake_index, "dredging oyster beds", outlets=["Harbour Courier"])
    assert only and {p.outlet for p in only} == {"Harbour Courier"}

    first = next(p for p in search(fake_index, "aardvarkium reservoir budget") if "aardvarkium" in p.text)
    last = next(p for p in search(fake_index, "zyzzyvance tunnel for cyclists") if "zyzzyvance" in p.text)
    for p in (first, last):
        assert (p.outlet, p.source, p.title) == ("Lakeside Ledger", str(pdf), "Lakeside council minutes")
        assert retriever.stored.documents[p.doc_id].text[p.start : p.end] == p.text
    assert (first.page, last.page) == (1, 2)

    html.unlink()
    pdf.unlink()
    report = build(corpus_dir, fake_index)
    assert set(report.removed) == {str(html), str(pdf)}
    assert indexed_sources(fake_index) == {str(corpus_dir / n) for n in CORPUS_FILES}
    assert not any(p.source in (str(html), str(pdf)) for p in search(fake_index, "zyzzyvance quarantine berth", k=50))
    with pytest.raises(QueryError):
        search(fake_index, "berth", outlets=["Harbour Courier", "Lakeside Ledger"])


def test_changed_chunk_settings_reembed_only_new_chunk_texts(
    fake_index: Path, corpus_dir: Path, embedder: CountingEmbedder
) -> None:
    before = generation(fake_index)
    old = load_index(fake_index)
    old_texts = {old.chunk(i).text for i in old.chunk_ids()}
    settings = BuildSettings(chunk=ChunkSettings(max_tokens=60, min_tokens=20))
    report = build(corpus_dir, fake_index, embedder, settings=settings)
    new = load_index(fake_index)
    new_chunks = [new.chunk(i) for i in new.chunk_ids()]
    fresh = [c for c in new_chunks if c.text not in old_texts]
    # Every chunk whose text is new is embedded, and nothing else: not even the sentences.
    assert report.embedded == len(fresh) == len(embedder.texts) > len(new_chunks) // 2
    assert report.sentences_embedded == 0
    assert read_manifest(fake_index).settings["chunk"]["max_tokens"] == 60
    assert generation(fake_index) == before + 1
    # And the same settings again: nothing to do.
    assert build(corpus_dir, fake_index, embedder, settings=settings).embedded == 0


def test_changed_model_reembeds_everything(fake_index: Path, corpus_dir: Path, embedder: CountingEmbedder) -> None:
    other = type(embedder)(HashEmbedder(dimension=128))
    report = build(corpus_dir, fake_index, other)
    assert report.embedded == report.chunks == len(other.texts) - report.sentences_embedded > 0
    manifest = read_manifest(fake_index)
    assert (manifest.model, manifest.dimension) == ("hash:128", 128)
    retriever = get_retriever(fake_index)
    assert retriever.embedder.dimension == 128
    assert any("40,000 tents" in p.text for p in retriever.search("40,000 tents from China", k=5))


def test_rebuild_flag_reembeds_everything(fake_index: Path, corpus_dir: Path, embedder: CountingEmbedder) -> None:
    report = build(corpus_dir, fake_index, embedder, rebuild=True)
    assert report.embedded == report.chunks == len(embedder.texts) - report.sentences_embedded > 0


def test_empty_file_in_place_of_an_indexed_one_keeps_it(fake_index: Path, corpus_dir: Path) -> None:
    path = corpus_dir / AIN
    with open(path, "w"):
        pass  # truncated to zero bytes, as an interrupted save leaves it
    report = build(corpus_dir, fake_index)
    assert "empty" in dict(report.rejected)[str(path)] and str(path) in indexed_sources(fake_index)


def test_subfolders_and_hidden_files(corpus_dir: Path, index_dir: Path, write_article) -> None:
    write_article(
        corpus_dir / "more" / "deep.md", "The marmot festival drew crowds.", title="Marmots", outlet="Alp Post"
    )
    write_article(corpus_dir / ".hidden" / "secret.txt", "Hidden marmot text.", title="Hidden", outlet="Nope")
    (corpus_dir / "notes.docx").write_bytes(b"PK\x03\x04")
    report = build(corpus_dir, index_dir)
    assert str(corpus_dir / "more" / "deep.md") in report.added
    assert report.documents == 6 and "Nope" not in get_retriever(index_dir).outlets


def test_unreadable_permissions_are_rejected(corpus_dir: Path, index_dir: Path, write_article) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = write_article(corpus_dir / "locked.txt", "Locked text.", title="Locked", outlet="Lock News")
    path.chmod(0)
    try:
        report = build(corpus_dir, index_dir)
    finally:
        path.chmod(0o644)
    assert "cannot read" in dict(report.rejected)[str(path)] and report.documents == 5


def test_nonexistent_source_changes_nothing(fake_index: Path, corpus_dir: Path, embedder: CountingEmbedder) -> None:
    before = generation(fake_index)
    with pytest.raises(IngestError, match="no such file or folder"):
        build_index([corpus_dir / "typo"], fake_index, embedder=embedder)
    with pytest.raises(IngestError, match="typo"):
        build_index([corpus_dir, corpus_dir.parent / "typo"], fake_index, embedder=embedder)
    assert generation(fake_index) == before and not embedder.calls
    assert indexed_sources(fake_index) == {str(corpus_dir / n) for n in CORPUS_FILES}


def test_a_single_path_is_one_source(corpus_dir: Path, index_dir: Path) -> None:
    for source in (str(corpus_dir), corpus_dir):
        report = build_index(source, index_dir, embedder=HashEmbedder())  # type: ignore[arg-type]
        assert report.documents == 5 and not report.rejected


def test_empty_folder_gives_an_empty_index_that_grows(tmp_path: Path, index_dir: Path, write_article) -> None:
    folder = tmp_path / "articles"
    folder.mkdir()
    report = build_index([folder], index_dir, embedder=HashEmbedder())
    assert report.documents == report.chunks == 0
    assert get_retriever(index_dir).search("anything at all") == []
    write_article(folder / "first.txt", "The first article is about a heron.", title="Heron", outlet="Bird News")
    report = build_index([folder], index_dir, embedder=HashEmbedder())
    assert report.added == (str(folder / "first.txt"),)
    assert get_retriever(index_dir).search("heron")[0].outlet == "Bird News"


def write_monolithic(index_dir: Path, version: int) -> int:
    """Rewrite `index_dir` in the monolithic layout of formats 1 and 2 (format 1 without the sentence
    files), as the build of that time wrote it; returns the number of sentences it holds."""
    import numpy as np

    from rag.store import document_to_json

    store = load_index(index_dir)
    manifest = store.manifest
    n = manifest.generation + 1
    names = {
        "documents": f"documents-{n}.jsonl",
        "chunks": f"chunks-{n}.jsonl",
        "vectors": f"vectors-{n}.npy",
        "dense": f"dense-{n}.faiss",
    }
    ids = list(store.chunk_ids())
    with (index_dir / names["documents"]).open("w", encoding="utf-8") as out:
        for doc_id in store.documents:
            out.write(json.dumps(document_to_json(store.documents[doc_id]), ensure_ascii=False) + "\n")
    with (index_dir / names["chunks"]).open("w", encoding="utf-8") as out:
        for cid in ids:
            c = store.chunk(cid)
            row = {"doc_id": c.doc_id, "index": c.index, "start": c.start, "end": c.end, "page": c.page, "text": c.text}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    np.save(index_dir / names["vectors"], store.vectors(ids))
    (index_dir / names["dense"]).write_bytes(b"not read")
    (index_dir / f"bm25-{n}").mkdir()
    sentences = 0
    if version == 2:
        names["sentences"], names["sentence_vectors"] = f"sentences-{n}.jsonl", f"sentence-vectors-{n}.npy"
        blocks = []
        with (index_dir / names["sentences"]).open("w", encoding="utf-8") as out:
            for doc_id in store.documents:
                spans, vectors = store.sentences.of(doc_id, 0, len(store.documents[doc_id].text) + 1)
                out.write(json.dumps({"doc_id": doc_id, "first": sentences, "spans": spans.tolist()}) + "\n")
                sentences += len(spans)
                blocks.append(vectors.astype(np.float16))
        np.save(index_dir / names["sentence_vectors"], np.concatenate(blocks))
    data = {
        "format_version": version,
        "generation": n,
        "model": manifest.model,
        "dimension": manifest.dimension,
        "settings": {**manifest.settings, "faiss": "flat"},
        "documents": {k: {"source": v["source"], "outlet": v["outlet"]} for k, v in manifest.documents.items()},
        "files": {name: "0" * 64 for name in names.values()},
        "faiss_type": "flat",
    }
    for segment in index_dir.glob("seg-*"):
        shutil.rmtree(segment)
    (index_dir / MANIFEST).write_text(json.dumps(data), encoding="utf-8")
    return sentences


@pytest.mark.parametrize("version", [1, 2])
def test_index_of_a_monolithic_format_is_updated_without_embedding_again(
    fake_index: Path, corpus_dir: Path, embedder: CountingEmbedder, version: int
) -> None:
    before = [(p.chunk_id, p.text) for p in search(fake_index, "tents ordered from China")]
    sentences = write_monolithic(fake_index, version)
    with pytest.raises(IndexMismatchError, match="update it with `rag index --index-dir"):
        load_index(fake_index)
    report = build(corpus_dir, fake_index, embedder)
    assert report.embedded == len(embedder.texts) - report.sentences_embedded == 0
    # Format 2 stored sentence vectors: none is embedded again. Format 1 had none to reuse.
    assert report.sentences_embedded == (0 if version == 2 else len(embedder.texts)) and (version == 2) == (
        sentences > 0
    )
    assert read_manifest(fake_index).format_version == FORMAT_VERSION
    assert [(p.chunk_id, p.text) for p in search(fake_index, "tents ordered from China")] == before
    # The old layout's files are gone with the first commit of the new one.
    assert (
        sorted(p.name for p in fake_index.iterdir() if p.name.split("-")[0] in ("documents", "chunks", "vectors")) == []
    )


def test_index_of_format_3_is_read_as_it_is_and_updated_to_the_current_format(
    fake_index: Path, corpus_dir: Path, embedder: CountingEmbedder, write_article
) -> None:
    """Format 3 listed every live article in the manifest as well as in the segments: it is read as
    it is, and the next build embeds only the new article and writes the current format."""
    before = [(p.chunk_id, p.text) for p in search(fake_index, "tents ordered from China")]
    documents = load_index(fake_index).manifest.documents
    manifest_path = fake_index / "manifest.json"
    data = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert "documents" not in data
    manifest_path.write_text(json.dumps(data | {"format_version": 3, "documents": documents}), encoding="utf-8")
    assert load_index(fake_index).manifest.documents == read_manifest(fake_index).documents == documents
    assert [(p.chunk_id, p.text) for p in search(fake_index, "tents ordered from China")] == before
    new = write_article(corpus_dir / "extra.txt", "A new pier opened in the harbour.", title="Pier", outlet="Pier News")
    report = build(corpus_dir, fake_index, embedder)
    assert report.added == (str(new),) and 0 < report.embedded == len(embedder.texts) - report.sentences_embedded
    assert all("pier" in text.lower() for text in embedder.texts)  # nothing of the old articles embedded again
    data = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert data["format_version"] == FORMAT_VERSION and "documents" not in data
    after = read_manifest(fake_index).documents
    assert after.keys() > documents.keys()
    assert [e["source"] for i, e in after.items() if i not in documents] == [str(new)]
    assert [(p.chunk_id, p.text) for p in search(fake_index, "tents ordered from China")] == before
