#!/usr/bin/env bash
# GPU smoke test: 2 GRPO iterations of the bundled model (SmolLM2-135M-Instruct, LoRA) on CUDA, then an
# evaluation of the trained adapter through agents/evaluate.py; with 2+ GPUs also 2 data-parallel
# iterations whose adapters must stay bit-identical. Each step checks what it wrote and the script exits
# non-zero on the first failure. Usage: bash scripts/gpu_smoke.sh [RUN_DIR]   (default runs/gpu_smoke)
# TOOLR1_PYTHON=/path/to/python uses that interpreter instead of setting up .venv.
#
# Status: written without a GPU and NOT YET RUN on one (no GPU was lent when it was written); the same
# steps pass on CPU (TOOLR1_SMOKE_ALLOW_CPU=1, which is how the commands themselves were checked).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${TOOLR1_PYTHON:-}" ]; then PY=$TOOLR1_PYTHON; else bash scripts/setup.sh; PY=.venv/bin/python; fi
OUT=${1:-runs/gpu_smoke}
rm -rf "$OUT"

GPUS=$("$PY" -c 'import torch; print(torch.cuda.device_count())')
if [ "$GPUS" = 0 ] && [ "${TOOLR1_SMOKE_ALLOW_CPU:-0}" != 1 ]; then
  echo "gpu_smoke: no CUDA device visible to torch ($("$PY" -c 'import torch; print(torch.__version__)'))" >&2
  exit 2
fi
echo "[gpu_smoke] $GPUS CUDA device(s)"

SMALL=(--iterations 2 --tasks_per_iteration 2 --group_size 4 --num_envs 8 --eval_every 0 --eval_size 8
       --checkpoint_every 1)
BF16=(); [ "$GPUS" != 0 ] && BF16=(--bf16)

echo "[gpu_smoke] 1/3 training, one process"
"$PY" agents/train_grpo.py "${SMALL[@]}" "${BF16[@]}" --output_dir "$OUT/train"
"$PY" - "$OUT/train" <<'PYEOF'
import json, math, sys
from pathlib import Path
rows = [json.loads(l) for l in (Path(sys.argv[1]) / "metrics.jsonl").read_text().splitlines()]
assert [r["step"] for r in rows] == [0, 1, 2], [r["step"] for r in rows]
for r in rows[1:]:
    assert math.isfinite(r["update/grad_norm"]) and "update/non_finite" not in r, r
    assert r["rollout/generated_tokens"] > 0, r
print("[gpu_smoke] training ok:", {k: round(rows[-1][k], 4) for k in ("update/loss", "update/entropy", "rollout/tokens_per_s")})
PYEOF

echo "[gpu_smoke] 2/3 evaluation of the trained adapter"
"$PY" agents/evaluate.py --agent local --adapter "$OUT/train" --tasks warmup-eval --limit 8 --concurrency 8 \
    --output_dir "$OUT/eval"
"$PY" -c "import json,sys; s=json.load(open('$OUT/eval/summary.json')); print('[gpu_smoke] eval ok:', {k: s[k] for k in list(s)[:6]})"

if [ "$GPUS" -ge 2 ]; then
  echo "[gpu_smoke] 3/3 two data-parallel processes"
  "$PY" -m accelerate.commands.launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no \
      --dynamo_backend no agents/train_grpo.py "${SMALL[@]}" "${BF16[@]}" --output_dir "$OUT/dp"
  "$PY" - "$OUT/dp" <<'PYEOF'
import json, sys
from pathlib import Path
rows = [json.loads(l) for l in (Path(sys.argv[1]) / "metrics.jsonl").read_text().splitlines()][1:]
assert rows and all(r["dp/adapter_checksum/rank0"] == r["dp/adapter_checksum/rank1"] for r in rows), rows
print("[gpu_smoke] data parallel ok: adapters bit-identical at every update")
PYEOF
else
  echo "[gpu_smoke] 3/3 skipped: data parallel needs 2 GPUs"
fi
echo "[gpu_smoke] all steps passed"
