"""ONNX Runtime copies of a sentence-transformers model: embedding without torch.

Two uses, one embedder (`OnnxEmbedder`) over one kind of directory (a "bundle": the .onnx file, the
model's tokenizer.json and embedder.json with pooling and lengths):

- fp32, kept in each index directory (`ensure_query_model`, made by `rag index`): the index's own model
  for questions. Its vectors equal the model's (cosine >= 0.9999, checked at export), and a question
  then costs an ONNX Runtime session and the `tokenizers` library instead of importing torch and
  sentence-transformers (seconds per process).
- int8, an optional model of its own for building indexes, about 2-3x faster on CPU:

`load_embedder("onnx-int8:all-MiniLM-L6-v2")` (or `"onnx-int8:<model dir>"`) gives an `OnnxEmbedder`.
The first use exports the model's transformer with torch's ONNX exporter, quantises its weight
MatMuls to int8 (dynamic, per channel) with onnxruntime, and keeps the result in a cache directory
(`$RAG_ONNX_CACHE`, else `$XDG_CACHE_HOME/rag/onnx`, else `~/.cache/rag/onnx`) under a hash of the
model files, so later processes only load it. Nothing is downloaded: the model must be on disk.

Tokenisation, mean pooling over the attention mask and L2 normalisation follow the model's
sentence-transformers pipeline (modules.json); int8 cosine to the float vectors is about 0.99. Activations
are quantised per batch, so a text's vector moves a little (cosine ~0.99) with its batch neighbours.
Threads: `threads=` or `$RAG_ONNX_THREADS`, else ONNX Runtime's default (one per physical core).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag.embed import resolve_model_path
from rag.errors import RagError
from rag.locks import file_lock

log = logging.getLogger(__name__)

PREFIX = "onnx-int8:"
MODEL_FILE = "model-int8.onnx"
FLOAT_FILE = "model-fp32.onnx"
TOKENIZER_FILE = "tokenizer.json"
BUNDLE_FILE = "embedder.json"
QUERY_DIR_PREFIX = "query-onnx-"  # the index's fp32 copy: query-onnx-<model hash>/
OPSET = 17
# Bump when the export or quantisation recipe changes: it is part of the cache key.
RECIPE = "torchscript-export/opset17/quantize_dynamic-matmul-qint8-per-channel/v2-bundle"
FLOAT_RECIPE = "torchscript-export/opset17/fp32/ort-extended-graph/v1"
FLOAT_MIN_COSINE = 0.9999  # an fp32 export must give the model's own vectors
# ONNX Runtime on CPU runs small batches fastest: 39 seed sentences took 0.49 s of CPU in batches of 8 and
# 1.1 s in one batch of 39; 40 seed chunks 1.4-1.5 s in batches of 4-8, 2.5 s in one (sorted by length).
MAX_BATCH_ROWS = 8
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_HASHED_SUFFIXES = (".json", ".txt", ".safetensors", ".bin", ".model")


def is_onnx_spec(spec: str) -> bool:
    return spec.startswith(PREFIX)


def base_spec(spec: str) -> str:
    """The model spec inside `onnx-int8:<spec>` (the default model when empty)."""
    inner = spec[len(PREFIX) :] if is_onnx_spec(spec) else spec
    return inner or "default"


def cache_root() -> Path:
    env = os.environ.get("RAG_ONNX_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "rag" / "onnx"


def local_model_dir(spec: str) -> Path:
    """The directory holding the model for `spec`, found on disk or in the local HF cache only."""
    path = Path(resolve_model_path(spec)).expanduser()
    if path.is_dir():
        return path.resolve()
    candidates = [str(spec)] if "/" in spec else [f"sentence-transformers/{spec}", spec]
    try:
        from huggingface_hub import snapshot_download

        for repo_id in candidates:
            with contextlib.suppress(Exception):
                return Path(snapshot_download(repo_id, local_files_only=True))
    except ImportError:
        pass
    raise RagError(
        f"cannot find embedding model {spec!r} on disk; give a local path or a model already in the "
        "Hugging Face cache (this tool does not download)"
    )


def model_hash(model_dir: Path, recipe: str = RECIPE) -> str:
    """A content hash of the files that define the model and its tokenizer, plus the export recipe."""
    digest = hashlib.sha256(recipe.encode())
    for file in sorted(p for p in model_dir.rglob("*") if p.is_file() and p.suffix in _HASHED_SUFFIXES):
        rel = file.relative_to(model_dir).as_posix()
        if rel.startswith(".") or rel.lower().startswith(("onnx/", "openvino/", "readme")):
            continue
        digest.update(rel.encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _export_lock(directory: Path, wait_seconds: float = 900.0) -> contextlib.AbstractContextManager[None]:
    """One export per model at a time across processes; the others wait and then reuse it."""
    busy = RagError(f"another process has been exporting the ONNX model in {directory} too long")
    return file_lock(directory / ".lock", wait_seconds, busy, poll_seconds=0.2)


def ensure_int8_model(model_dir: Path, cache_dir: Path | None = None) -> Path:
    """The cached int8 ONNX file for `model_dir`, exported and quantised first if it is not there yet."""
    target_dir = (cache_dir or cache_root()) / model_hash(model_dir)
    target = target_dir / MODEL_FILE
    if target.is_file():
        return target
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RagError(f"cannot create the ONNX cache directory {target_dir}: {exc}") from exc
    with _export_lock(target_dir):
        if target.is_file():  # another process finished it while we waited
            return target
        started = time.perf_counter()
        log.info("exporting %s to int8 ONNX in %s (once)", model_dir, target_dir)
        scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=target_dir))
        try:
            write_bundle(model_dir, scratch, quantize=True)
            for name in (TOKENIZER_FILE, BUNDLE_FILE):
                os.replace(scratch / name, target_dir / name)
            os.replace(scratch / MODEL_FILE, target)  # last and atomic: its presence means the bundle is whole
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        log.info("ONNX export took %.1fs", time.perf_counter() - started)
    return target


def copy_for_queries(index_dir: Path, embedder: Any, known: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """What a build records as the index's ONNX copy of its model (see ensure_query_model), or None
    when the embedder is not a sentence-transformers model or the export fails: questions then load
    the model itself, slower but the same. `known` is the previous build's record, reused while it exists."""
    from rag.embed import SentenceTransformerEmbedder

    if not isinstance(embedder, SentenceTransformerEmbedder):
        return None  # the hash embedder of the tests, or an int8 ONNX model already
    if known and (Path(index_dir) / str(known.get("dir")) / str(known.get("file"))).is_file():
        return known
    try:
        return ensure_query_model(index_dir, embedder.name)
    except (RagError, ImportError) as exc:
        log.warning("no ONNX copy of the model for questions (%s); questions will load %s", exc, embedder.name)
        return None


def ensure_query_model(index_dir: Path, model_spec: str) -> dict[str, Any]:
    """The index's fp32 ONNX copy of its model for questions, exported first if it is not there yet.

    Returns what the manifest records: {"dir", "file", "model_hash", "recipe"}. Call it under the
    index's build lock. Copies for other models (an index rebuilt with another one) are removed."""
    model_dir = local_model_dir(model_spec)
    digest = model_hash(model_dir, FLOAT_RECIPE)
    name = QUERY_DIR_PREFIX + digest
    target = Path(index_dir) / name
    record = {"dir": name, "file": FLOAT_FILE, "model_hash": digest, "recipe": FLOAT_RECIPE}
    if not (target / FLOAT_FILE).is_file():
        started = time.perf_counter()
        log.info("exporting %s to ONNX in %s for questions (once per index)", model_spec, target)
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
        try:
            write_bundle(model_dir, scratch, quantize=False)
            scratch.chmod(0o755)  # mkdtemp makes it private; the index is not
            shutil.rmtree(target, ignore_errors=True)  # a partial copy from a killed build
            os.replace(scratch, target)  # atomic: the directory appears whole
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        log.info("ONNX export of %s for questions took %.1fs", model_spec, time.perf_counter() - started)
    for old in Path(index_dir).glob(QUERY_DIR_PREFIX + "*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return record


def write_bundle(model_dir: Path, out_dir: Path, quantize: bool) -> Path:
    """Export `model_dir` into `out_dir` (fp32, or int8 when `quantize`), checked against torch, with the
    tokenizer and pooling it needs to run without torch. Returns the model file."""
    float_path = out_dir / FLOAT_FILE
    try:
        probe, reference, tokenizer = export_float(model_dir, float_path)
        tokenizer.backend_tokenizer.save(str(out_dir / TOKENIZER_FILE))
        path = float_path
        if quantize:
            path = out_dir / MODEL_FILE
            quantize_int8(float_path, path)
            float_path.unlink()
        else:
            optimize_graph(float_path)
    except RagError:
        raise
    except Exception as exc:  # torch or onnxruntime refusing this model: say which step
        kind = "int8" if quantize else "fp32"
        raise RagError(f"cannot export {model_dir} to {kind} ONNX ({type(exc).__name__}: {exc})") from exc
    pooling, _ = _pooling(model_dir)
    cosine = _check_export(path, probe, reference, minimum=0.95 if quantize else FLOAT_MIN_COSINE, pooling=pooling)
    st_config = _read_json(model_dir / "sentence_bert_config.json")
    model_config = _read_json(model_dir / "config.json")
    meta = {
        "source": str(model_dir),
        "recipe": RECIPE if quantize else FLOAT_RECIPE,
        "opset": OPSET,
        "file": path.name,
        "pooling": pooling,
        "dimension": int(reference.shape[1]),
        "max_seq_length": int(
            st_config.get("max_seq_length") or min(int(model_config.get("max_position_embeddings", 512)), 512)
        ),
        "do_lower_case": bool(st_config.get("do_lower_case", False)),
        "pad_id": int(tokenizer.pad_token_id or 0),
        "min_cosine_to_torch": round(float(cosine), 6),
        "created": time.time(),
    }
    (out_dir / BUNDLE_FILE).write_text(json.dumps(meta, indent=1))
    for file in (path, out_dir / TOKENIZER_FILE, out_dir / BUNDLE_FILE):
        with file.open("rb") as handle:
            os.fsync(handle.fileno())
    return path


# Texts of other lengths and batch size than the export sample, to check the axes really are dynamic.
_PROBES = (
    "Election results were announced on Sunday.",
    "x",
    "The central bank raised interest rates by half a percentage point on Wednesday, its third increase this "
    "year, saying inflation remained far above its target and that further rises were likely in the months "
    "ahead as energy and food prices kept climbing across the region.",
)


def export_float(model_dir: Path, out: Path) -> tuple[dict[str, np.ndarray], np.ndarray, Any]:
    """Export the model's transformer (token embeddings out) with dynamic batch and sequence axes.

    Returns a padded probe batch, torch's pooled, normalised vectors for it (to check the export against),
    and the model's (fast) tokenizer.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import warnings

    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # no "Loading weights" bar in the middle of a build

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if not tokenizer.is_fast:
        raise RagError(f"{model_dir}: the ONNX embedder needs a fast tokenizer (tokenizer.json)")
    # Eager attention traces to plain MatMul/Softmax, the graph ONNX Runtime fuses and runs best.
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out[0]

    # A padded batch, so the traced graph keeps the attention-mask path.
    sample = tokenizer(
        ["a short one", "a somewhat longer sample sentence for the export"], padding=True, return_tensors="pt"
    )
    args = tuple(sample[name] if name in sample else torch.zeros_like(sample["input_ids"]) for name in _INPUTS)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*_INPUTS, "token_embeddings")}
    # The reference comes first: the module is not the same after tracing.
    probe = tokenizer(list(_PROBES), padding=True, return_tensors="np")
    feeds = {name: probe[name] if name in probe else np.zeros_like(probe["input_ids"]) for name in _INPUTS}
    with torch.no_grad():
        tokens = model(**{name: torch.from_numpy(value) for name, value in feeds.items()})[0].numpy()
    reference = _pool(tokens, feeds["attention_mask"], _pooling(model_dir)[0])
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings about shape checks that hold for every input
        torch.onnx.export(
            TokenEmbeddings(model),
            args,
            str(out),
            input_names=list(_INPUTS),
            output_names=["token_embeddings"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter: no onnxscript dependency, handles BERT's dynamic shapes
            external_data=False,
            do_constant_folding=True,
        )
    return feeds, reference, tokenizer


def _pool(tokens: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    if mode == "cls":
        pooled = tokens[:, 0, :]
        return np.asarray(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12), np.float32)
    return _mean_pool(tokens, mask)


def _mean_pool(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[:, :, None].astype(np.float32)
    pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return np.asarray(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12), dtype=np.float32)


def _check_export(
    path: Path, feeds: dict[str, np.ndarray], reference: np.ndarray, minimum: float = 0.95, pooling: str = "mean"
) -> float:
    """Refuse an export whose vectors are not those of the model (a trace that froze a shape, say).
    Returns the lowest cosine to the reference."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    tokens = session.run(None, {name: feeds[name].astype(np.int64) for name in names})[0]
    cosine = np.sum(_pool(tokens, feeds["attention_mask"], pooling) * reference, axis=1)
    if not np.all(cosine >= minimum):
        raise RagError(f"the ONNX export of the model does not reproduce it (cosine {cosine.min():.5f})")
    return float(cosine.min())


def optimize_graph(path: Path) -> None:
    """Replace the model with ONNX Runtime's optimised graph of it (fused attention, GELU, layer norm), so
    that each process loading it skips that work (0.1-0.2 s of a question's start-up)."""
    import onnxruntime as ort

    optimised = path.with_name(path.name + ".opt")
    options = ort.SessionOptions()
    # Extended, not all: the level whose saved graph runs on any CPU (no hardware-specific layouts).
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(optimised)
    ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    os.replace(optimised, path)


def quantize_int8(float_path: Path, out: Path) -> None:
    """Dynamic int8 quantisation of the weight MatMuls, per output channel (attention MatMuls stay float)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    advice = _DropMessage("pre-processing before quantization")  # its advice for static quantisation
    root.addFilter(advice)
    try:
        quantize_dynamic(
            str(float_path),
            str(out),
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            weight_type=QuantType.QInt8,
        )
    finally:
        root.removeFilter(advice)


class _DropMessage(logging.Filter):
    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _pooling(model_dir: Path) -> tuple[str, bool]:
    """The pooling mode ("mean" or "cls") and whether the pipeline normalises, from modules.json."""
    modules = json.loads((model_dir / "modules.json").read_text()) if (model_dir / "modules.json").is_file() else []
    mode, normalise = "mean", False
    for module in modules:
        kind = str(module.get("type", ""))
        if kind.endswith("Pooling"):
            config = _read_json(model_dir / str(module.get("path", "")) / "config.json")
            if config.get("pooling_mode_cls_token"):
                mode = "cls"
            elif not config.get("pooling_mode_mean_tokens", True) or any(
                config.get(k) for k in ("pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
            ):
                raise RagError(f"{model_dir}: only mean or CLS pooling is supported by the ONNX embedder")
        elif kind.endswith("Normalize"):
            normalise = True
        elif not kind.endswith("Transformer"):
            raise RagError(f"{model_dir}: the ONNX embedder cannot run the module {kind}")
    return mode, normalise


class OnnxEmbedder:
    """Embedder (see rag.embed.Embedder) running an ONNX export of a sentence-transformers model.

    `OnnxEmbedder("onnx-int8:<model>")` exports (once, into the cache) and runs the int8 copy;
    `OnnxEmbedder.from_bundle(model_file, name)` runs an exported bundle as it is, such as an index's
    fp32 copy. Neither imports torch or transformers once the bundle exists."""

    def __init__(self, spec: str = PREFIX, threads: int | None = None, cache_dir: Path | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.name = spec if is_onnx_spec(spec) else PREFIX + spec
        self.model_dir = local_model_dir(base_spec(spec))
        self._open(ensure_int8_model(self.model_dir, cache_dir), threads)

    @classmethod
    def from_bundle(cls, model_path: Path, name: str, threads: int | None = None) -> OnnxEmbedder:
        embedder = cls.__new__(cls)
        embedder.name = name
        embedder.model_dir = model_path.parent
        embedder._open(model_path, threads)
        return embedder

    def _open(self, model_path: Path, threads: int | None) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_path = model_path
        bundle = model_path.parent
        meta = _read_json(bundle / BUNDLE_FILE)
        try:
            tokenizer_json = (bundle / TOKENIZER_FILE).read_text(encoding="utf-8")
            self.pooling = str(meta["pooling"])
            self.dimension = int(meta["dimension"])
            self.max_seq_length = int(meta["max_seq_length"])
            self._lower = bool(meta.get("do_lower_case", False))
            self._pad_id = int(meta.get("pad_id", 0))
            self._tokenizer: Any = Tokenizer.from_str(tokenizer_json)
            # A second copy counts every token (the first cuts at the model's length, as sentence-transformers
            # does); made on first use: questions never count.
            self._counter: Any = None
            self._tokenizer_json = tokenizer_json
        except Exception as exc:  # OSError, KeyError... and tokenizers raises a bare Exception
            raise RagError(
                f"the ONNX model in {bundle} is incomplete ({type(exc).__name__}); delete it to export again"
            ) from exc
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.max_seq_length)
        self._special = len(self._tokenizer.encode("").ids)

        options = ort.SessionOptions()
        env_threads = os.environ.get("RAG_ONNX_THREADS")
        options.intra_op_num_threads = int(threads if threads is not None else (env_threads or 0))
        options.inter_op_num_threads = 1
        # Idle worker threads sleep instead of spinning: on a shared CPU spinning burns cores for nothing.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session: Any = ort.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # a damaged file: say where it is
            raise RagError(f"cannot load {model_path} ({exc}); delete it to export again") from exc
        self._inputs = [i.name for i in self._session.get_inputs()]

    def count_tokens(self, text: str) -> int:
        if self._counter is None:
            from tokenizers import Tokenizer

            counter = Tokenizer.from_str(self._tokenizer_json)
            counter.no_padding()
            counter.no_truncation()
            self._counter = counter
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def special_tokens(self) -> int:
        return self._special

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Ids with special tokens, cut at max_seq_length, as sentence-transformers tokenises (stripped)."""
        prepared = [t.strip().lower() if self._lower else t.strip() for t in texts]
        return [encoding.ids for encoding in self._tokenizer.encode_batch(prepared)]

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        ids = self.token_ids(list(texts))
        # Longest first, in batches of similar length: a batch pads only to its own longest text.
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        batch_size = max(1, min(batch_size, MAX_BATCH_ROWS))
        starts = range(0, len(order), batch_size)
        bar: Any = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(order), desc=f"embedding ({self.model_path.stem})", unit="chunk")
        for start in starts:
            rows = order[start : start + batch_size]
            out[rows] = self._embed_batch([ids[r] for r in rows])
            if bar is not None:
                bar.update(len(rows))
        if bar is not None:
            bar.close()
        return out

    def _embed_batch(self, batch: list[list[int]]) -> np.ndarray:
        width = max(len(seq) for seq in batch)
        input_ids = np.full((len(batch), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, seq in enumerate(batch):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        tokens = self._session.run(None, {name: feeds[name] for name in self._inputs})[0]
        return _pool(tokens, mask, self.pooling)
