"""What an evaluation *is*, as hashes: the adapter's weights and the arguments that change its outcome.

``--resume`` may continue an evaluation only when it would produce the very same records, so it keys on
content, never on a folder path: retraining into the same run folder changes the adapter's bytes, hence
its digest, and the old records are never reported as the new adapter's accuracy. The identity is written
to ``eval_config.json`` and ``summary.json``; benchmarks name their output folders by it.

* ``adapter_sha256``: SHA-256 over the resolved adapter folder's files (names and bytes, sorted) and the
  training run's ``args.json`` found beside it (the conversation the adapter is played in); ``""``
  without an adapter.
* ``args_sha256``: SHA-256 of the evaluation arguments except those that cannot change a record
  (:data:`VOLATILE`: where the output goes, progress display, concurrency, retries, keys) and ``limit``
  (the evaluated set is always the first ``limit`` tasks, so a larger limit extends the same evaluation).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Evaluation arguments that never change a record (left out of ``args_sha256``).
VOLATILE = frozenset({"output_dir", "resume", "no_progress", "concurrency", "limit", "repeats", "max_agent_failures",
                      "api_key", "web_api_key", "request_timeout", "max_retries"})


def file_tree_digest(folder: Path, extra: Path | None = None) -> str:
    """SHA-256 over every file below ``folder`` (relative names and bytes, sorted) plus ``extra`` if given."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(path.read_bytes())
    if extra is not None and extra.is_file():
        digest.update(b"\0args.json\0" + extra.read_bytes())
    return digest.hexdigest()


def adapter_digest(adapter: str | Path) -> str:
    """The digest of a trainer-written adapter (adapter, checkpoint or run folder; see ``resolve_adapter``)."""
    from agents.players.trained_run import resolve_adapter

    folder, _ = resolve_adapter(adapter)
    args_file = next((p for p in (folder.parent / "args.json", folder / "args.json") if p.is_file()), None)
    return file_tree_digest(folder, args_file)


def args_digest(args: Mapping[str, Any]) -> str:
    """SHA-256 of the arguments that can change a record (everything but :data:`VOLATILE`)."""
    kept = {k: v for k, v in sorted(args.items()) if k not in VOLATILE}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def evaluation_identity(args: Mapping[str, Any]) -> dict[str, str]:
    """``{"adapter_sha256", "args_sha256"}`` of an evaluation's arguments (``adapter`` read from ``args``)."""
    adapter = args.get("adapter") or ""
    return {"adapter_sha256": adapter_digest(adapter) if adapter else "", "args_sha256": args_digest(args)}


def identity_diff(saved: Mapping[str, Any], identity: Mapping[str, str], saved_args: Mapping[str, Any],
                  args: Mapping[str, Any]) -> list[str]:
    """Readable reasons why ``saved`` (an ``eval_config.json``) is another evaluation; [] when the same."""
    reasons = []
    if saved.get("adapter_sha256", "") != identity["adapter_sha256"]:
        reasons.append(f"adapter weights: sha256 {str(saved.get('adapter_sha256') or 'none')[:12]} then, "
                       f"{identity['adapter_sha256'][:12] or 'none'} now")
    if saved.get("args_sha256") != identity["args_sha256"]:
        changed = [f"{k}: {saved_args.get(k)!r} then, {args.get(k)!r} now" for k in sorted(set(args) | set(saved_args))
                   if k not in VOLATILE and saved_args.get(k) != args.get(k)]
        reasons += changed or ["arguments differ"]
    return reasons


def identity_key(identity: Mapping[str, str]) -> str:
    """A short name for an identity (12 hex digits of the SHA-256 of both digests), for folder names."""
    return hashlib.sha256((identity["adapter_sha256"] + identity["args_sha256"]).encode()).hexdigest()[:12]
