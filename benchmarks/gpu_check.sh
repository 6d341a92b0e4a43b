#!/usr/bin/env bash
# GPU check of wtal-kit, prepared for a fresh machine with one CUDA GPU, Python 3 + pip, a
# CUDA build of torch (preinstalled) and no internet. Budget: about 5 minutes in all.
#
#   bash benchmarks/gpu_check.sh                       # from the repository root
#
# Steps (each under `timeout`, and all within GPU_CHECK_BUDGET seconds together):
#   1. benchmarks/bench_train.py --device cuda --repeats 20 --paper-iterations, then again with --bf16:
#      full training step vs its two GEMMs (paper configuration); the training loop vs its isolated
#      step, iterations/s and their ratio (paper d = 2048 and quick d = 256); and the paper
#      configuration's 4401 iterations end to end, "paper config 4401 iterations: X s" (issue #9's
#      goal: under 30 s on one H100)
#   2. a short training run of the paper configuration (d = 2048) on the embedded synthetic
#      benchmark: 1500 iterations, evaluated every 500, with lr 1e-3 (an OVERRIDE: the paper's
#      1e-4 does not move within this budget); prints iterations/s and the final mAP table
#   3. the explorer's path: inference of the run's test split on the device (Run.scores), then
#      benchmarks/bench_explorer.py --quick on the scores it wrote
#   4. the training part of the reproduction's full mode on a slice of the grid (Table 5: six
#      configs, seed 0) with several processes sharing the GPU, from an empty store; the whole
#      grid is 24 configs x 3 seeds, and the script prints the time it extrapolates for it
# Summary: ${OUT:-/tmp}/gpu_check.txt (the full log is ${OUT:-/tmp}/gpu_check.log).
#
# Environment knobs (for a CPU dry run: GPU_CHECK_DEVICE=cpu GPU_CHECK_ITERATIONS=20 ...):
#   GPU_CHECK_DEVICE      cuda     device for both steps (cpu skips the CUDA requirement)
#   GPU_CHECK_ITERATIONS  1500     training iterations
#   GPU_CHECK_EVAL_EVERY  500      evaluate every this many iterations
#   GPU_CHECK_REPEATS     20       timed calls per workload in the benchmark
#   GPU_CHECK_STEP_TIMEOUT 280     seconds at most per step
#   GPU_CHECK_BUDGET      270      seconds at most for steps 1-3 together (step 4 comes on top)
#   GPU_CHECK_REPRODUCE   1        0: skip step 4
#   GPU_CHECK_REPRODUCE_ONLY table5   artefacts of step 4
#   GPU_CHECK_REPRODUCE_WORKERS 6     training processes of step 4
#   GPU_CHECK_REPRODUCE_TIMEOUT 330   seconds at most for step 4
#   GPU_CHECK_BENCH_FLAGS ""       extra flags for bench_train.py (e.g. --quick for a dry run)
#   GPU_CHECK_PAPER       1        0: skip the 4401 iterations end to end in step 1 (about 40 s per precision)
#   GPU_CHECK_INSTALL     1        0: skip `pip install -e .` (PYTHONPATH=. is set either way)
#   PYTHON                python3  the interpreter
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
ITERATIONS=${GPU_CHECK_ITERATIONS:-1500}
EVAL_EVERY=${GPU_CHECK_EVAL_EVERY:-500}
REPEATS=${GPU_CHECK_REPEATS:-20}
STEP_TIMEOUT=${GPU_CHECK_STEP_TIMEOUT:-280}
BUDGET=${GPU_CHECK_BUDGET:-270}
BENCH_FLAGS=${GPU_CHECK_BENCH_FLAGS:-}
PAPER_FLAG=()
[[ ${GPU_CHECK_PAPER:-1} != 0 ]] && PAPER_FLAG=(--paper-iterations)
LR=1e-3
OUT_DIR=${OUT:-/tmp}
mkdir -p "$OUT_DIR"
SUMMARY="$OUT_DIR/gpu_check.txt"
LOG="$OUT_DIR/gpu_check.log"
: >"$SUMMARY"
: >"$LOG"
START=$SECONDS

say() { echo "$*" | tee -a "$SUMMARY"; }

# seconds the next step may run: the per-step limit, or what is left of the budget
step_limit() {
    local left=$((BUDGET - (SECONDS - START)))
    if ((left < STEP_TIMEOUT)); then echo "$left"; else echo "$STEP_TIMEOUT"; fi
}

# run_step NAME COMMAND...: run under timeout, output to the log (and the terminal); never aborts the script
run_step() {
    local name=$1 limit status
    shift
    limit=$(step_limit)
    if ((limit < 10)); then
        say "[$name] SKIPPED: the ${BUDGET} s budget is spent"
        return 1
    fi
    echo "== $name (timeout ${limit} s): $*" >>"$LOG"
    set +e
    timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
    status=${PIPESTATUS[0]}
    set -e
    if ((status == 124)); then
        say "[$name] TIMED OUT after ${limit} s"
    elif ((status != 0)); then
        say "[$name] FAILED with exit status $status (see $LOG)"
    fi
    return "$status"
}

say "wtal-kit GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

# -- 0. environment (one Python start: importing CUDA torch takes seconds) -----------------
set +e
environment=$("$PYTHON" - "$DEVICE" <<'EOF' 2>&1
import importlib, platform, sys

try:
    import torch
except Exception as exc:
    print(f"ERROR: 'import torch' fails ({type(exc).__name__}: {exc}): this check needs a CUDA build of torch installed")
    sys.exit(1)
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), python {platform.python_version()}")
if sys.argv[1] == "cuda":
    if not torch.cuda.is_available():
        print("ERROR: torch sees no CUDA device; this script needs a GPU machine "
              "(GPU_CHECK_DEVICE=cpu runs it on CPU as a dry run)")
        sys.exit(1)
    props = torch.cuda.get_device_properties(0)
    print(f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB")
missing = []
for name in ("numpy", "pandas", "h5py", "tqdm"):
    try:
        importlib.import_module(name)
    except Exception:
        missing.append(name)
print("MISSING " + " ".join(missing))
EOF
)
status=$?
set -e
grep -v '^MISSING' <<<"$environment" | tee -a "$SUMMARY"
if ((status != 0)); then
    exit 1
fi
missing=$(sed -n 's/^MISSING *//p' <<<"$environment")

# Install the package without dependencies and without build isolation (no internet: pip
# could fetch neither); whatever happens, PYTHONPATH=. makes `import wtal_kit` work from here.
if [[ ${GPU_CHECK_INSTALL:-1} == 0 ]]; then
    say "pip install skipped (GPU_CHECK_INSTALL=0); using PYTHONPATH=."
elif timeout 90 "$PYTHON" -m pip install --no-deps --no-build-isolation -q -e . >>"$LOG" 2>&1; then
    say "pip install -e . (no deps): ok"
else
    say "pip install -e . failed (see $LOG); using PYTHONPATH=. instead"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [[ -n $missing ]]; then
    say "missing Python packages: $missing (no internet here to install them)"
else
    say "numpy, pandas, h5py, tqdm: all importable"
fi

# -- 1. benchmark: full step vs its GEMMs --------------------------------------------------
if [[ " $missing " == *" numpy "* ]]; then
    say "[bench] SKIPPED: needs numpy"
else
    for precision in fp32 bf16; do
        flag=()
        [[ $precision == bf16 ]] && flag=(--bf16)
        # shellcheck disable=SC2086  # BENCH_FLAGS is a list of flags
        if run_step "bench $precision" "$PYTHON" benchmarks/bench_train.py --device "$DEVICE" --repeats "$REPEATS" \
            ${flag[@]+"${flag[@]}"} ${PAPER_FLAG[@]+"${PAPER_FLAG[@]}"} $BENCH_FLAGS; then
            say "[bench $precision]"
            # the result lines of this run: the last block the benchmark printed
            awk '/^bench_train:/{block=""} {block=block $0 "\n"} END{printf "%s", block}' "$LOG" \
                | grep -E "device|B=|full step|GEMM floor|ratio|training loop|loop it/s|\(d=[0-9]+\)|one batch|paper config|before the first|final mAP" \
                | tee -a "$SUMMARY" >/dev/null
        fi
    done
fi

# -- 2. short training run, paper configuration at d = 2048 ---------------------------------
RUN_DIR="$OUT_DIR/gpu-run"
if [[ -n $missing ]]; then
    say "[train] SKIPPED: training needs $missing"
else
    say "[train] paper preset, d = 2048, $ITERATIONS iterations, eval every $EVAL_EVERY, device $DEVICE;"
    say "        lr $LR is an OVERRIDE of the paper's 1e-4 (which does not move within a 5-minute budget)"
    rm -rf "$RUN_DIR"
    train_start=$SECONDS
    if run_step train "$PYTHON" -m wtal_kit.apps.cli train --preset paper --device "$DEVICE" --iterations "$ITERATIONS" \
        --eval-every "$EVAL_EVERY" --lr "$LR" --run-dir "$RUN_DIR" --no-progress; then
        wall=$((SECONDS - train_start))
        "$PYTHON" - "$RUN_DIR" "$ITERATIONS" "$wall" <<'EOF' | tee -a "$SUMMARY"
import json, sys
from pathlib import Path

run_dir, iterations, wall = Path(sys.argv[1]), int(sys.argv[2]), max(int(sys.argv[3]), 1)
results = json.loads((run_dir / "results.json").read_text())
print(f"        {iterations} iterations in {wall} s wall: {iterations / wall:.1f} iterations/s "
      f"(wall time of the whole command: startup, data generation and {len(list(open(run_dir / 'metrics.csv'))) - 1} evaluations included)")
print(f"        trainer's own time {results['seconds']:.0f} s on {results['device']}; dataset: {results['dataset']}")
print("        final mAP (%, " + results["checkpoint"] + " checkpoint, " + results["eval_protocol"] + " protocol):")
print("          " + "  ".join(f"@{k}: {100 * v:.1f}" for k, v in results["map"].items()))
print("        per evaluation (metrics.csv):")
for line in open(run_dir / "metrics.csv"):
    print("          " + line.rstrip())
EOF
    elif [[ -f $RUN_DIR/metrics.csv ]]; then
        say "        evaluations logged before it stopped (metrics.csv):"
        sed 's/^/          /' "$RUN_DIR/metrics.csv" | tee -a "$SUMMARY"
    fi
fi

# -- 3. the explorer's inference: a run without its scores file computes it on the device ---------
if [[ -f $RUN_DIR/checkpoint.pt ]]; then
    rm -f "$RUN_DIR"/scores_*.h5
    if run_step "explorer inference" "$PYTHON" - "$RUN_DIR" "$DEVICE" <<'EOF'
import sys, time
import wtal_kit

run = wtal_kit.load_run(sys.argv[1])
started = time.perf_counter()
scores = run.scores(device=sys.argv[2], progress=False)  # inference of the held-out split, written atomically
inferred = time.perf_counter() - started
started = time.perf_counter()
localizer = wtal_kit.Localizer(scores)
evaluation = localizer.evaluate()
print(f"explorer inference: {scores.annotations.num_videos} videos in {inferred:.1f} s on {sys.argv[2]}; "
      f"Localizer built and evaluated in {time.perf_counter() - started:.2f} s; "
      f"avg mAP {100 * evaluation.mean_ap['avg']:.1f}")
EOF
    then
        grep "^explorer inference:" "$LOG" | tail -1 | tee -a "$SUMMARY" >/dev/null
        run_step "bench explorer" "$PYTHON" benchmarks/bench_explorer.py --quick --scores "$RUN_DIR/scores_test.h5" \
            && awk '/^== bench explorer/{block=""} {block=block $0 "\n"} END{printf "%s", block}' "$LOG" \
                | grep -E "median|faster" | tail -7 | tee -a "$SUMMARY" >/dev/null
    fi
fi

# -- 4. the reproduction in full mode, a slice of the grid ----------------------------------
# The training part of `wtal reproduce --mode full` (the notebooks that follow read the store on the
# CPU, and the GPU image has no Jupyter packages).
if [[ ${GPU_CHECK_REPRODUCE:-1} != 0 ]]; then
    only=${GPU_CHECK_REPRODUCE_ONLY:-table5}
    workers=${GPU_CHECK_REPRODUCE_WORKERS:-6}
    say "[reproduce] full-mode grid of: $only, seed 0, $workers worker processes on $DEVICE, empty store"
    set +e
    # shellcheck disable=SC2086  # $only is a list of names
    timeout "${GPU_CHECK_REPRODUCE_TIMEOUT:-330}" "$PYTHON" benchmarks/reproduce_slice.py "$OUT_DIR/store" "$DEVICE" "$workers" $only \
        2>&1 | tee -a "$LOG" | grep "^reproduce:" | tee -a "$SUMMARY"
    status=${PIPESTATUS[0]}
    set -e
    ((status == 124)) && say "[reproduce] TIMED OUT"
fi

say "total $((SECONDS - START)) s; summary in $SUMMARY, log in $LOG"
