#!/usr/bin/env bash
# GPU smoke test: 2 GRPO iterations of the bundled model (SmolLM2-135M-Instruct, LoRA, bf16 weights and
# autocast) on CUDA, then an evaluation of the trained adapter through agents/evaluate.py (in the run's dtype),
# then 2 steps of the TRL route (agents/train_trl.py: GRPOTrainer with our rollout and sample queue; with vLLM
# colocated too when vllm is installed); with 2+ GPUs also 2 data-parallel iterations whose adapters must stay
# bit-identical. Each step checks what it wrote and the script exits
# non-zero on the first failure. Usage: bash scripts/gpu_smoke.sh [RUN_DIR]   (default runs/gpu_smoke)
# TOOLR1_PYTHON=/path/to/python uses that interpreter instead of setting up .venv.
#
# Status: written without a GPU and NOT YET RUN on one (no GPU was lent when it was written, nor when the TRL
# step was added on 2026-12-06); the same steps pass on CPU (TOOLR1_SMOKE_ALLOW_CPU=1, which is how the commands
# themselves were checked; on CPU the weights stay fp32 and the vLLM step is skipped).
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
BF16=(); [ "$GPUS" != 0 ] && BF16=(--dtype bfloat16 --bf16)

echo "[gpu_smoke] 1/4 training, one process"
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

echo "[gpu_smoke] 2/4 evaluation of the trained adapter"
"$PY" agents/evaluate.py --agent local --adapter "$OUT/train" --tasks warmup-eval --limit 8 --concurrency 8 \
    --output_dir "$OUT/eval"
"$PY" -c "import json,sys; s=json.load(open('$OUT/eval/summary.json')); print('[gpu_smoke] eval ok:', {k: s[k] for k in list(s)[:6]})"

echo "[gpu_smoke] 3/4 the TRL route (GRPOTrainer + our rollout), 2 steps"
TRL=(--max_steps 2 --dataset_size 4 --num_generations 4 --per_device_train_batch_size 4
     --gradient_accumulation_steps 1 --num_envs 8 --max_new_tokens 48 --save_steps 1)
VLLM=()
if [ "$GPUS" != 0 ] && "$PY" -c "import vllm" >/dev/null 2>&1; then
  VLLM=(--use_vllm --vllm_mode colocate --vllm_gpu_memory_utilization 0.2)
fi
echo "[gpu_smoke] TRL with ${VLLM[*]:-no vLLM (not installed, or no GPU): generation on the training model}"
TRL_EXPERIMENTAL_SILENCE=1 "$PY" agents/train_trl.py "${TRL[@]}" "${BF16[@]}" "${VLLM[@]}" --output_dir "$OUT/trl"
"$PY" - "$OUT/trl" <<'PYEOF'
import json, math, sys
from pathlib import Path
out = Path(sys.argv[1])
state = json.loads((out / "checkpoint-2" / "toolr1_rollout.json").read_text())
assert state["calls"] == 2, state["calls"]  # the rollout played both steps and its queue was checkpointed
summary = json.loads((out / "summary.json").read_text())
assert (out / "adapter_config.json").exists() and all(math.isfinite(v) for v in summary.values()), summary
print("[gpu_smoke] TRL ok:", summary)
PYEOF

if [ "$GPUS" -ge 2 ]; then
  echo "[gpu_smoke] 4/4 two data-parallel processes"
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
  echo "[gpu_smoke] 4/4 skipped: data parallel needs 2 GPUs"
fi
echo "[gpu_smoke] all steps passed"
