"""An int8 ONNX Runtime copy of a sentence-transformers model: the same vectors, about 2-3x faster on CPU.

`load_embedder("onnx-int8:all-MiniLM-L6-v2")` (or `"onnx-int8:<model dir>"`) gives an `OnnxEmbedder`.
The first use exports the model's transformer with torch's ONNX exporter, quantises its weight
MatMuls to int8 (dynamic, per channel) with onnxruntime, and keeps the result in a cache directory
(`$RAG_ONNX_CACHE`, else `$XDG_CACHE_HOME/rag/onnx`, else `~/.cache/rag/onnx`) under a hash of the
model files, so later processes only load it. Nothing is downloaded: the model must be on disk.

Tokenisation, mean pooling over the attention mask and L2 normalisation follow the model's
sentence-transformers pipeline (modules.json); cosine to the float vectors is about 0.99. Activations
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
OPSET = 17
# Bump when the export or quantisation recipe changes: it is part of the cache key.
RECIPE = "torchscript-export/opset17/quantize_dynamic-matmul-qint8-per-channel/v1"
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


def model_hash(model_dir: Path) -> str:
    """A content hash of the files that define the model and its tokenizer, plus the export recipe."""
    digest = hashlib.sha256(RECIPE.encode())
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
            float_path = scratch / "model-fp32.onnx"
            int8_path = scratch / MODEL_FILE
            try:
                probe, reference = export_float(model_dir, float_path)
                quantize_int8(float_path, int8_path)
            except Exception as exc:  # torch or onnxruntime refusing this model: say which step
                raise RagError(f"cannot export {model_dir} to int8 ONNX ({type(exc).__name__}: {exc})") from exc
            _check_export(int8_path, probe, reference)
            with int8_path.open("rb") as handle:
                os.fsync(handle.fileno())
            meta = {"source": str(model_dir), "recipe": RECIPE, "opset": OPSET, "created": time.time()}
            (scratch / "export.json").write_text(json.dumps(meta, indent=2))
            os.replace(scratch / "export.json", target_dir / "export.json")
            os.replace(int8_path, target)  # atomic: readers see the whole file or none
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        log.info("ONNX export took %.1fs", time.perf_counter() - started)
    return target


# Texts of other lengths and batch size than the export sample, to check the axes really are dynamic.
_PROBES = (
    "Election results were announced on Sunday.",
    "x",
    "The central bank raised interest rates by half a percentage point on Wednesday, its third increase this "
    "year, saying inflation remained far above its target and that further rises were likely in the months "
    "ahead as energy and food prices kept climbing across the region.",
)


def export_float(model_dir: Path, out: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Export the model's transformer (token embeddings out) with dynamic batch and sequence axes.

    Returns a padded probe batch and torch's mean-pooled, normalised vectors for it, to check the export against.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import warnings

    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
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
    reference = _mean_pool(tokens, feeds["attention_mask"])
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
    return feeds, reference


def _mean_pool(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[:, :, None].astype(np.float32)
    pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return np.asarray(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12), dtype=np.float32)


def _check_export(path: Path, feeds: dict[str, np.ndarray], reference: np.ndarray, minimum: float = 0.95) -> None:
    """Refuse an export whose vectors are not those of the model (a trace that froze a shape, say)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    tokens = session.run(None, {name: feeds[name].astype(np.int64) for name in names})[0]
    cosine = np.sum(_mean_pool(tokens, feeds["attention_mask"]) * reference, axis=1)
    if not np.all(cosine >= minimum):
        raise RagError(f"the int8 ONNX export of the model does not reproduce it (cosine {cosine.min():.3f})")


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
    """Embedder (see rag.embed.Embedder) running an int8 ONNX export of a sentence-transformers model."""

    def __init__(self, spec: str = PREFIX, threads: int | None = None, cache_dir: Path | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.name = spec if is_onnx_spec(spec) else PREFIX + spec
        self.model_dir = local_model_dir(base_spec(spec))
        self.pooling, _ = _pooling(self.model_dir)  # vectors are always normalised, as the protocol asks
        self.model_path = ensure_int8_model(self.model_dir, cache_dir)
        self._tokenizer: Any = AutoTokenizer.from_pretrained(str(self.model_dir))
        st_config = _read_json(self.model_dir / "sentence_bert_config.json")
        model_config = _read_json(self.model_dir / "config.json")
        self.max_seq_length = int(
            st_config.get("max_seq_length") or min(int(model_config.get("max_position_embeddings", 512)), 512)
        )
        self.dimension = int(model_config.get("hidden_size", 0))
        self._special = len(self._tokenizer("")["input_ids"])
        self._pad_id = int(self._tokenizer.pad_token_id or 0)

        options = ort.SessionOptions()
        env_threads = os.environ.get("RAG_ONNX_THREADS")
        options.intra_op_num_threads = int(threads if threads is not None else (env_threads or 0))
        options.inter_op_num_threads = 1
        # Idle worker threads sleep instead of spinning: on a shared CPU spinning burns cores for nothing.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session: Any = ort.InferenceSession(
                str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # a damaged cache file: say where it is
            raise RagError(f"cannot load {self.model_path} ({exc}); delete it to export again") from exc
        self._inputs = [i.name for i in self._session.get_inputs()]
        if not self.dimension:
            self.dimension = int(self.encode(["dimension"]).shape[1])

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"])

    def special_tokens(self) -> int:
        return self._special

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        ids: list[list[int]] = self._tokenizer(
            list(texts), truncation=True, max_length=self.max_seq_length, padding=False
        )["input_ids"]
        # Longest first, in batches of similar length: a batch pads only to its own longest text.
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        starts = range(0, len(order), max(1, batch_size))
        bar: Any = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(order), desc="embedding (onnx int8)", unit="chunk")
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
        if self.pooling == "cls":
            pooled = tokens[:, 0, :]
            return np.asarray(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12), np.float32)
        return _mean_pool(tokens, mask)
