#!/usr/bin/env bash
# GPU check of wtal-kit (issue 20), prepared as ONE call on a fresh machine with one CUDA GPU, Python 3,
# a CUDA build of torch (preinstalled) and no internet. Expected: about 6 minutes on an H100 or H200;
# every step has its own timeout and all of them stay within GPU_CHECK_BUDGET (510 s) together, so
# the call ends well inside a 10-minute limit whatever hangs.
#
#   bash benchmarks/gpu_check.sh                       # from the repository root
#
# Without a CUDA device the script does not fail: it runs its DRY RUN, the same steps and commands at
# CPU sizes (the paper preset at d = 64 for 6 iterations, the smoke grid, ...), to show that every
# step executes end to end; each figure it prints is then marked "DRY RUN (CPU)" and means nothing
# about a GPU. GPU_CHECK_DEVICE=cuda makes a missing GPU an error instead.
#
# Steps, in order of importance (the budget skips what no longer fits, last first):
#   0. tests/test_gpu.py (when pytest is installed): the graph replays the eager fast step, the fast
#      step equals the plain step in fp32 and bf16 (it prints the gaps it measured), no host sync per
#      step (torch.cuda.set_sync_debug_mode("error")), a fast run resumed
#   1. benchmarks/bench_train.py --loop-iterations 0, in fp32 then bf16: one training step of the
#      paper configuration (B 20, T 300, d 2048, C 20) against its two GEMMs: the plain step and the
#      fast step (Config.fast_step: static shapes, one CUDA graph replay), their step/GEMM ratios
#   2. the whole `wtal train --preset paper` command on the THUMOS14 layout (embedded synthetic
#      benchmark; 4401 iterations, evaluated every 500 and at the end; startup and data included),
#      timed from outside: the fast step in fp32, the plain step in fp32, the fast step in bf16. Prints
#        paper preset, 4401 iterations: N s   (...which step, which precision...)
#      (issue 20's goal: <= 30 s on one H100 or H200; moonshot 10 s)
#   3. `wtal infer` of a quick-preset checkpoint trained briefly on --dataset synthetic-activitynet12,
#      on the ActivityNet layout's 2383 validation videos, the whole command timed (goal: <= 10 s)
#   4. a slice of the reproduction grid (--mode paper): Table 5's six runs (THUMOS14 layout) and
#      Table 2's run (ActivityNet layout), seed 0, seven processes sharing the GPU, fast step,
#      feature cache large enough for the ActivityNet layout's splits to live on the GPU; fp32 (the
#      grid's precision), then bf16 if 170 s of the budget are left; prints for each
#        full grid, 72 runs: M min   (scaled from the slice, which it names)
#      (goal: <= 15 min on one card; the fp32 GEMMs alone, 2.4 ms a step on an H200, make 72 x 4401
#      steps 12.7 min, so the goal likely needs bf16)
# Summary: ${OUT:-/tmp}/gpu_check.txt (the full log is ${OUT:-/tmp}/gpu_check.log).
#
# Environment knobs (the dry run sets its own unless given):
#   GPU_CHECK_DEVICE        auto     auto: cuda when torch sees one, else the CPU dry run; cuda: a GPU or an error
#   GPU_CHECK_BUDGET        510      seconds for all steps together (steps that no longer fit are skipped)
#   GPU_CHECK_STEP_TIMEOUT  240      seconds at most per step (the grid slice: GPU_CHECK_GRID_TIMEOUT)
#   GPU_CHECK_BENCH_FLAGS   ""       extra flags for bench_train.py (dry run: --quick --repeats 2)
#   GPU_CHECK_PAPER_FLAGS   ""       extra flags for the paper-preset runs of step 2 (dry run: --feature-dim 64
#                                    --iterations 6 --eval-every 3)
#   GPU_CHECK_PAPER_RUNS    "fast-fp32 plain-fp32 fast-bf16"   which runs step 2 makes, in order
#   GPU_CHECK_INFER_FLAGS   "--iterations 100 --eval-every 100"   training flags of step 3's checkpoint (dry run:
#                                    --feature-dim 16 --iterations 2 --eval-every 2)
#   GPU_CHECK_GRID          1        0: skip step 4
#   GPU_CHECK_GRID_ONLY     "table5 table2"   artefacts of the slice
#   GPU_CHECK_GRID_MODE     paper    reproduction mode of the slice (dry run: smoke)
#   GPU_CHECK_GRID_WORKERS  7        processes of the slice (dry run: 2)
#   GPU_CHECK_GRID_FLAGS    "--fast-step --feature-cache-mb 16384"   flags of reproduce_slice.py (e.g. add --bf16)
#   GPU_CHECK_GRID_TIMEOUT  330      seconds at most for each grid slice
#   GPU_CHECK_GRID_PRECISIONS "fp32 bf16"   the slices of step 4 (bf16 only with GPU_CHECK_GRID_BF16_MIN = 170 s left)
#   GPU_CHECK_INSTALL       1        0: skip `pip install -e .` (PYTHONPATH=. is set either way)
#   PYTHON                  python3  the interpreter
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET:-510}
STEP_TIMEOUT=${GPU_CHECK_STEP_TIMEOUT:-240}
OUT_DIR=${OUT:-/tmp}
mkdir -p "$OUT_DIR"
SUMMARY="$OUT_DIR/gpu_check.txt"
LOG="$OUT_DIR/gpu_check.log"
: >"$SUMMARY"
: >"$LOG"
START=$SECONDS

say() { echo "$*" | tee -a "$SUMMARY"; }

# seconds the next step may run: its own limit, or what is left of the budget
step_limit() {
    local left=$((BUDGET - (SECONDS - START))) own=${1:-$STEP_TIMEOUT}
    if ((left < own)); then echo "$left"; else echo "$own"; fi
}

# run_step NAME LIMIT COMMAND...: under timeout, output to the log only; never aborts the script
run_step() {
    local name=$1 limit status
    limit=$(step_limit "$2")
    shift 2
    if ((limit < 15)); then
        say "[$name] SKIPPED: the ${BUDGET} s budget is spent"
        return 1
    fi
    echo "== $name (timeout ${limit} s): $*" >>"$LOG"
    set +e
    timeout "$limit" "$@" >>"$LOG" 2>&1
    status=$?
    set -e
    if ((status == 124)); then
        say "[$name] TIMED OUT after ${limit} s"
    elif ((status != 0)); then
        say "[$name] FAILED with exit status $status (see $LOG)"
    fi
    return "$status"
}

# the lines of the last step's output (in the log) that match a pattern
last_block() { awk '/^== /{block=""} {block=block $0 "\n"} END{printf "%s", block}' "$LOG" | grep -v '^== ' | grep -E "$1" || true; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b - a}'; }

say "wtal-kit GPU check (issue 20), $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

# -- 0. environment: one Python start (importing CUDA torch takes seconds) --------------------------
set +e
environment=$("$PYTHON" - "${GPU_CHECK_DEVICE:-auto}" <<'EOF' 2>&1
import importlib, os, platform, sys

try:
    import torch
except Exception as exc:
    print(f"ERROR: 'import torch' fails ({type(exc).__name__}: {exc}): this check needs torch installed")
    sys.exit(1)
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), python {platform.python_version()}, {os.cpu_count()} CPU cores")
asked = sys.argv[1]
if torch.cuda.is_available() and asked != "cpu":
    props = torch.cuda.get_device_properties(0)
    print(f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB")
    print("DEVICE cuda")
elif asked == "cuda":
    print("ERROR: GPU_CHECK_DEVICE=cuda but torch sees no CUDA device (leave it unset for the CPU dry run)")
    sys.exit(1)
else:
    print("no CUDA device: DRY RUN on CPU at small sizes; no figure below is a GPU figure")
    print("DEVICE cpu")
missing = [name for name in ("numpy", "pandas", "h5py", "tqdm") if importlib.util.find_spec(name) is None]
print("MISSING " + " ".join(missing))
EOF
)
status=$?
set -e
grep -v -E '^(MISSING|DEVICE)' <<<"$environment" | tee -a "$SUMMARY"
((status == 0)) || exit 1
DEVICE=$(sed -n 's/^DEVICE *//p' <<<"$environment")
missing=$(sed -n 's/^MISSING *//p' <<<"$environment")
if [[ -n $missing ]]; then
    say "missing Python packages: $missing (no internet here to install them): the check cannot train"
    exit 1
fi

if [[ $DEVICE == cpu ]]; then
    DRY="DRY RUN (CPU): "
    BENCH_FLAGS=${GPU_CHECK_BENCH_FLAGS---quick --repeats 2}
    PAPER_FLAGS=${GPU_CHECK_PAPER_FLAGS---feature-dim 64 --iterations 6 --eval-every 3}
    INFER_FLAGS=${GPU_CHECK_INFER_FLAGS---feature-dim 16 --iterations 2 --eval-every 2}
    GRID_MODE=${GPU_CHECK_GRID_MODE:-smoke}
    GRID_WORKERS=${GPU_CHECK_GRID_WORKERS:-2}
    GRID_FLAGS=${GPU_CHECK_GRID_FLAGS---fast-step}
else
    DRY=""
    BENCH_FLAGS=${GPU_CHECK_BENCH_FLAGS-}
    PAPER_FLAGS=${GPU_CHECK_PAPER_FLAGS-}
    INFER_FLAGS=${GPU_CHECK_INFER_FLAGS---iterations 100 --eval-every 100}
    GRID_MODE=${GPU_CHECK_GRID_MODE:-paper}
    GRID_WORKERS=${GPU_CHECK_GRID_WORKERS:-7}
    GRID_FLAGS=${GPU_CHECK_GRID_FLAGS---fast-step --feature-cache-mb 16384}
fi

# Install the package without dependencies and without build isolation (no internet: pip could
# fetch neither); whatever happens, PYTHONPATH=. makes `import wtal_kit` work from here.
if [[ ${GPU_CHECK_INSTALL:-1} == 0 ]]; then
    say "pip install skipped (GPU_CHECK_INSTALL=0); using PYTHONPATH=."
elif timeout 90 "$PYTHON" -m pip install --no-deps --no-build-isolation -q -e . >>"$LOG" 2>&1; then
    say "pip install -e . (no deps): ok"
else
    say "pip install -e . failed (see $LOG); using PYTHONPATH=. instead"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
WTAL=("$PYTHON" -m wtal_kit.apps.cli)

# -- 0b. tests/test_gpu.py: the fast step's graph equals its eager run and the plain step; no sync per step --
if ! "$PYTHON" -c "import pytest" 2>/dev/null; then
    say "[tests/test_gpu.py] SKIPPED: pytest is not installed here"
elif run_step "tests/test_gpu.py" 150 "$PYTHON" -m pytest -q -s -p no:cacheprovider tests/test_gpu.py; then
    say "${DRY}[tests/test_gpu.py]"
    last_block "gap|passed|skipped|failed" | sed 's/^/  /' | tee -a "$SUMMARY"
else
    last_block "gap|passed|failed|Error|assert" | tail -20 | sed 's/^/  /' | tee -a "$SUMMARY"
fi

# -- 1. one step against its GEMMs: plain and fast, fp32 and bf16 ------------------------------------
for precision in fp32 bf16; do
    flag=()
    [[ $precision == bf16 ]] && flag=(--bf16)
    # shellcheck disable=SC2086  # BENCH_FLAGS is a list of flags
    if run_step "bench $precision" 120 "$PYTHON" benchmarks/bench_train.py --device "$DEVICE" --repeats 20 \
        --loop-iterations 0 ${flag[@]+"${flag[@]}"} $BENCH_FLAGS; then
        say "${DRY}[bench $precision]"
        last_block "device|B=|full step|fast step|GEMM floor|ratio" | sed 's/^/  /' | tee -a "$SUMMARY"
    fi
done

# -- 2. the paper preset, the whole `wtal train` command -------------------------------------------
# report RUN_DIR SECONDS WHAT: the line of issue 20, and what the run itself reports
report_run() {
    "$PYTHON" - "$@" <<'EOF' | tee -a "$SUMMARY"
import json, sys
from pathlib import Path

run_dir, wall, what, dry = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
results = json.loads((run_dir / "results.json").read_text())
config = json.loads((run_dir / "config.json").read_text())
evaluations = len(open(run_dir / "metrics.csv").readlines()) - 1
print(f"{dry}{config['preset']} preset, {config['iterations']} iterations: {wall:.1f} s"
      f"  ({what}; the whole `wtal train --preset {config['preset']}` command: startup, data, {evaluations} evaluations"
      f" included; d={config['feature_dim']}, {results['dataset']})")
print(f"    trainer's own time {results['seconds']:.1f} s on {results['device']};"
      f" final mAP (%, {results['checkpoint']} checkpoint): "
      + "  ".join(f"@{k}: {100 * v:.1f}" for k, v in results["map"].items()))
EOF
}

for run in ${GPU_CHECK_PAPER_RUNS:-fast-fp32 plain-fp32 fast-bf16}; do
    step=${run%-*}
    precision=${run#*-}
    flags=(--fast-step "$([[ $step == fast ]] && echo true || echo false)" --bf16 "$([[ $precision == bf16 ]] && echo true || echo false)")
    run_dir="$OUT_DIR/paper-$run"
    rm -rf "$run_dir"
    started=$(now)
    # shellcheck disable=SC2086  # PAPER_FLAGS is a list of flags
    if run_step "paper $run" 240 "${WTAL[@]}" train --preset paper --device "$DEVICE" "${flags[@]}" $PAPER_FLAGS \
        --run-dir "$run_dir" --no-progress; then
        report_run "$run_dir" "$(since "$started")" "$step step, $precision" "$DRY"
    fi
done

# -- 3. wtal infer on the ActivityNet layout's validation videos ------------------------------------
infer_dir="$OUT_DIR/infer-activitynet"
rm -rf "$infer_dir"
# shellcheck disable=SC2086  # INFER_FLAGS is a list of flags
if run_step "infer: train a checkpoint" 150 "${WTAL[@]}" train --preset quick --dataset synthetic-activitynet12 \
    --device "$DEVICE" $INFER_FLAGS --run-dir "$infer_dir" --no-progress; then
    rm -f "$infer_dir"/scores_*.h5
    started=$(now)
    if run_step "infer" 120 "${WTAL[@]}" infer --checkpoint "$infer_dir/checkpoint.pt" --dataset synthetic-activitynet12 \
        --device "$DEVICE" --out "$infer_dir/scores_validation.h5" --no-progress; then
        wall=$(since "$started")
        videos=$(last_block "^wrote" | sed -n 's/.*(\([0-9]*\) videos.*/\1/p')
        say "${DRY}wtal infer, ActivityNet layout, ${videos:-?} validation videos: $wall s  (the whole command: startup," \
            "features read from the synthetic generator, inference on $DEVICE, scores file written; goal <= 10 s)"
    fi
fi

# -- 4. a slice of the reproduction grid, scaled to the whole grid ---------------------------------------
# fp32 (the grid's own precision), then bf16 (another store key) when at least GRID_BF16_MIN seconds are left
if [[ ${GPU_CHECK_GRID:-1} != 0 ]]; then
    only=${GPU_CHECK_GRID_ONLY:-table5 table2}
    for precision in ${GPU_CHECK_GRID_PRECISIONS:-fp32 bf16}; do
        flag=()
        if [[ $precision == bf16 ]]; then
            flag=(--bf16)
            if ((BUDGET - (SECONDS - START) < ${GPU_CHECK_GRID_BF16_MIN:-170})); then
                say "[grid slice bf16] SKIPPED: less than ${GPU_CHECK_GRID_BF16_MIN:-170} s of the budget left"
                continue
            fi
        fi
        rm -rf "$OUT_DIR/store-$precision"
        # shellcheck disable=SC2086  # lists of names and flags
        if run_step "grid slice $precision" "${GPU_CHECK_GRID_TIMEOUT:-330}" "$PYTHON" benchmarks/reproduce_slice.py \
            "$OUT_DIR/store-$precision" "$DEVICE" "$GRID_WORKERS" $only --mode "$GRID_MODE" $GRID_FLAGS ${flag[@]+"${flag[@]}"}; then
            last_block "^reproduce:|^full grid" | sed "s/^full grid/${DRY}full grid/" | tee -a "$SUMMARY"
        else
            last_block "^reproduce:" | tee -a "$SUMMARY"
        fi
    done
fi

say "total $((SECONDS - START)) s; summary in $SUMMARY, log in $LOG"
