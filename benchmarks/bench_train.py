"""Benchmark: one full training step vs the GEMMs it cannot avoid.

    python benchmarks/bench_train.py                     # paper configuration, device auto
    python benchmarks/bench_train.py --device cuda --bf16
    python benchmarks/bench_train.py --quick             # small sizes, a few seconds (smoke test)
    python benchmarks/bench_train.py --profile           # also print the step's top operators
    python benchmarks/bench_train.py --paper-iterations  # also the paper's 4401 iterations end to end
    python benchmarks/bench_train.py --device cuda --fast-step --loop-iterations 0   # the fast step's loop too

Paper configuration (docs/method.md, "Defaults", ``Config()`` defaults): B = 20 videos, T = 300 segments
(valid lengths drawn in [150, 300], one of them 300, the rest zero padding as the trainer's
``make_batch`` does), d = 2048, C = 20; balanced BCE with blocks of 60 and top-10, triplet
metric loss with the class distance, kappa 4, dropout 0.7, Adam lr 1e-4.

Three things are timed side by side in this process, alternating, after a warm-up:

- full step: ``wtal_kit.training.compute_losses`` (model forward + both losses), backward, Adam step;
- fast step: the trainer's step with ``Config.fast_step`` (``TrainState.step``: the batch copied
  into static buffers of max_segments = T, and on CUDA one replay of the step captured as a CUDA
  graph, capturable fused Adam; on CPU the same computation eagerly), on the same batch;
- GEMM floor: two plain Linear layers of the same sizes (d -> d, ReLU, d -> C), ``.sum()``,
  backward, no optimizer: the work no implementation of the step can skip.

The medians, the ratio of each step to the floor and the peak memory of each are printed, with
whether the target "step <= 1.5 x its GEMMs" is met (a captured graph allocates in its own pool
at capture: the fast step's peak is what one replay adds, about nothing). Peak memory of one call after the warm-up: on CUDA
``torch.cuda.max_memory_allocated`` above what was allocated before the call; on CPU (Linux)
the peak resident set size above the RSS before the call, after resetting the kernel's
high-water mark (see :func:`cpu_peak_bytes`). Both count activations and gradients, not the
parameters, inputs or Adam's state (allocated during the warm-up).

Then, for the paper configuration (d = 2048) and the quick preset (d = 256) on the embedded
synthetic benchmark (THUMOS14 layout), the training loop against its own step:

- training loop: ``wtal_kit.training.train`` itself (sampler, batch assembly, step, loss read-back),
  iterations per second between its ``warm-up``-th and last iteration, taken from an iteration
  callback (data loading before the loop and the evaluation after it are not in the window);
- isolated step: the same config's forward + losses + backward + Adam on one batch drawn by the
  trainer's sampler, already on the device, called again and again (``TrainState.step``; the
  timing waits for the device after each call, the loop only every ``log_every`` iterations).

The ratio loop / step (time per iteration) is what the data path costs: 1.0 is a loop fed for free.
``--fast-step`` runs both (and the paper run below) with ``Config.fast_step``.
``--paper-iterations`` also times the paper configuration's whole run end to end (4401 iterations,
evaluated every 500 iterations and at the end, data loading included), the figure issue #9 sets a
goal for (under 30 s on one H100); off by default since it takes about half an hour on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from wtal_kit import losses  # noqa: E402
from wtal_kit.config import Config  # noqa: E402
from wtal_kit.model import WtalModel  # noqa: E402

try:
    from wtal_kit.training import build_optimizer, compute_losses  # noqa: E402

    LOSS_SOURCE = "wtal_kit.training.compute_losses"
except ImportError as missing:  # the trainer also needs pandas / h5py / tqdm, which a bare GPU box may lack
    LOSS_SOURCE = f"inline copy of compute_losses (wtal_kit.training not importable: {missing})"

    def build_optimizer(parameters, config, device):
        return torch.optim.Adam(parameters, lr=config.lr)

    def compute_losses(model, custom_factors, features, lengths, labels, config):
        """The paper default's path of ``wtal_kit.training.compute_losses`` (bbce + metric loss), torch only."""
        u, cas, _ = model(features)  # (B, T, d), (B, T, C)
        probs = losses.video_probs(cas, lengths, block_size=config.effective_block_size, k=config.k)  # (B, C)
        classification = losses.balanced_bce(probs, labels)
        metric = losses.metric_loss(u, cas, labels, lengths, model.classifier_weight, margin=config.margin,
                                    kind=config.metric_loss, distance=config.distance)
        total = config.classification_weight * classification + config.metric_weight * metric
        return {"classification": classification, "metric": metric, "total": total}

TARGET_RATIO = 1.5  # the step may cost at most this many times its GEMMs
PAPER_SIZES = dict(batch=20, max_len=300, feature_dim=2048, num_classes=20, classes_per_batch=4)
QUICK_SIZES = dict(batch=8, max_len=128, feature_dim=256, num_classes=6, classes_per_batch=2)


# -- inputs ---------------------------------------------------------------------------
def make_inputs(batch, max_len, feature_dim, num_classes, classes_per_batch, device, seed=0):
    """A padded batch shaped like the trainer's: features (B, T, d), lengths (B,), labels (B, C).

    Lengths are drawn in [T/2, T] with the first one T; padding is zero. Labels follow the
    paper's sampler: ``classes_per_batch`` classes, B / classes_per_batch videos each, and
    every third video also carries one more class (multi-label videos occur in THUMOS14).
    """
    rng = np.random.default_rng(seed)
    lengths = rng.integers(max_len // 2, max_len + 1, size=batch)  # (B,)
    lengths[0] = max_len
    features = rng.standard_normal((batch, max_len, feature_dim), dtype=np.float32)  # (B, T, d)
    features[np.arange(max_len)[None, :] >= lengths[:, None]] = 0  # zero padding, as make_batch
    labels = np.zeros((batch, num_classes), dtype=np.float32)  # (B, C)
    per_class = batch // classes_per_batch
    labels[np.arange(batch), np.minimum(np.arange(batch) // per_class, classes_per_batch - 1)] = 1
    labels[::3, classes_per_batch % num_classes] = 1
    return (
        torch.from_numpy(features).to(device),
        torch.from_numpy(lengths).to(device),
        torch.from_numpy(labels).to(device),
    )


def paper_config(feature_dim: int) -> Config:
    """The paper's defaults (bbce + triplet + class distance, kappa 4, block 60, k 10, dropout 0.7, Adam 1e-4)."""
    return Config(feature_dim=feature_dim)


# -- the two workloads -------------------------------------------------------------------
class FullStep:
    """Forward + both losses (``compute_losses``) + backward + Adam step, as the trainer runs them."""

    name = "full step (forward + losses + backward + Adam)"

    def __init__(self, sizes, device, bf16: bool, seed=0):
        torch.manual_seed(seed)
        self.config = paper_config(sizes["feature_dim"])
        self.model = WtalModel(
            feature_dim=sizes["feature_dim"], num_classes=sizes["num_classes"],
            dropout=self.config.dropout, kappa=self.config.kappa,
        ).to(device).train()
        self.optimizer = build_optimizer(list(self.model.parameters()), self.config, device)  # as the trainer builds it
        self.features, self.lengths, self.labels = make_inputs(device=device, seed=seed, **sizes)
        self.device, self.bf16 = device, bf16

    def __call__(self):
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            terms = compute_losses(self.model, None, self.features, self.lengths, self.labels, self.config)
        self.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        self.optimizer.step()


class FastStep:
    """The trainer's fast step (``Config.fast_step``) on the same batch: static buffers, a CUDA graph on CUDA."""

    name = "fast step (static shapes; CUDA graph on CUDA)"

    def __init__(self, sizes, device, bf16: bool, seed=0):
        from wtal_kit.training import Batch, TrainState
        from wtal_kit.training.state import CAPTURE_AFTER

        config = paper_config(sizes["feature_dim"]).replace(fast_step=True, bf16=bf16, max_segments=sizes["max_len"],
                                                            seed=seed)
        zero_mean = np.zeros(sizes["feature_dim"], dtype=np.float32)  # uncentred, as FullStep's model
        self.state = TrainState.fresh(config, sizes["num_classes"], device, zero_mean)
        self.state.model.train()
        self.batch = Batch(*make_inputs(device=device, seed=seed, **sizes))
        for _ in range(CAPTURE_AFTER + 1):  # the eager steps and the capture, before any timing
            self()
        self.captured = self.state.fast.graph is not None

    def __call__(self):
        self.state.step(self.batch)


class GemmFloor:
    """The same two Linear layers alone: Linear d->d, ReLU, Linear d->C, .sum(), backward (no optimizer)."""

    name = "GEMM floor (2 Linear forward + backward)"

    def __init__(self, sizes, device, bf16: bool, seed=0):
        torch.manual_seed(seed)
        d, c = sizes["feature_dim"], sizes["num_classes"]
        self.layers = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, c)).to(device)
        self.features, _, _ = make_inputs(device=device, seed=seed, **sizes)
        self.device, self.bf16 = device, bf16

    def __call__(self):
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss = self.layers(self.features).sum()
        self.layers.zero_grad(set_to_none=True)
        loss.backward()


# -- measurement ----------------------------------------------------------------------
def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def time_side_by_side(workloads, device, repeats: int, warmup: int) -> list[list]:
    """Seconds per call of each workload, alternating (the order reverses every repeat so none always runs first)."""
    for _ in range(warmup):
        for workload in workloads:
            workload()
    synchronize(device)
    times = [[] for _ in workloads]
    for r in range(repeats):
        order = list(range(len(workloads))) if r % 2 == 0 else list(reversed(range(len(workloads))))
        for i in order:
            times[i].append(timed(workloads[i], device))
    return times


def cuda_peak_bytes(fn, device) -> int:
    """Peak CUDA memory allocated during one call, above what was allocated before it."""
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base


def _proc_status_kib(field: str) -> int:
    """A ``VmXXX`` line of /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def cpu_peak_bytes(fn) -> int | None:
    """Growth of the resident set size during one call, above the RSS before it (Linux only, else None).

    ``ru_maxrss`` is the process's all-time peak and cannot go down, so it cannot measure two
    workloads in one process (and a subprocess inherits its parent's peak across fork + exec).
    Linux resets the same high-water mark (VmHWM) when "5" is written to /proc/self/clear_refs.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS
        base = _proc_status_kib("VmRSS")
    except OSError:
        return None
    fn()
    return (_proc_status_kib("VmHWM") - base) * 1024


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_train: --device cuda was asked for but torch sees no CUDA device")
    return torch.device(name)


def print_profile(step, device, rows: int = 20):
    """The step's most expensive operators (self time) over one call."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, record_shapes=True) as prof:
        step()
        synchronize(device)
    sort_key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages(group_by_input_shape=True).table(sort_by=sort_key, row_limit=rows,
                                                             max_name_column_width=36, max_shapes_column_width=60))


# -- the training loop against its own step -----------------------------------------------
LOOP_CONFIGS = ("paper", "quick")  # the presets compared: paper (d = 2048) and quick (d = 256)
PAPER_ITERATIONS = Config.iterations  # 4401: the paper configuration's run


def loop_config(preset: str, device: torch.device, bf16: bool, fast_step: bool = False):
    """The preset as ``wtal train --preset PRESET`` runs it, on ``device`` (the embedded synthetic benchmark)."""
    return Config.from_preset(preset, device=device.type, bf16=bf16, fast_step=fast_step)


class IsolatedStep:
    """Forward + losses + backward + Adam of ``config`` on one fixed batch already on the device.

    The batch is the trainer's own: drawn by its sampler and windowed by ``make_batch`` from the
    run's seed; the model is built (and centred) as ``train`` builds it. Each call reads the loss
    terms back to the host, as the trainer's step does.
    """

    def __init__(self, config, dataset, device):
        from wtal_kit import training

        split = training.Split.of(config, dataset)
        rng = np.random.default_rng(config.seed)
        sampler = training.BatchSampler(dataset.annotations.video_labels[split.train_indices], config)
        batch = split.train_indices[sampler.sample(rng)]
        mean = training.training_feature_mean(dataset.features, batch) if config.center_features else None
        self.state = training.TrainState.fresh(config, dataset.annotations.num_classes, device, mean)
        self.state.model.train()
        features, lengths = training.make_batch([dataset.features(i) for i in batch], config.max_segments, rng)
        labels = dataset.annotations.video_labels[batch].astype(np.float32)
        self.batch = training.Batch(torch.from_numpy(features).to(device),  # (B, T, d)
                                    torch.from_numpy(lengths).to(device),  # (B,)
                                    torch.from_numpy(labels).to(device))  # (B, C)

    def __call__(self):
        return self.state.step(self.batch)  # the trainer's step: terms stay on the device


def time_training_loop(config, dataset, iterations: int, warmup: int) -> dict:
    """``train`` for warmup + iterations iterations; seconds of the last ``iterations`` and of the whole call."""
    from wtal_kit import training

    stamps, sources = [], set()

    class Clock(training.Callback):
        def on_iteration(self, event):
            stamps.append(time.perf_counter())

    batch = training.TrainingData.batch

    def observed(data, rng):  # which data path the trainer chose
        sources.add(type(data.features).__name__)
        return batch(data, rng)

    total = warmup + iterations
    config = config.replace(iterations=total, eval_every=total)  # one evaluation, after the timed window
    started = time.perf_counter()
    training.TrainingData.batch = observed
    try:
        with tempfile.TemporaryDirectory() as run_dir:
            training.train(config, run_dir, quiet=True, progress=False, callbacks=[Clock()], dataset=dataset)
    finally:
        training.TrainingData.batch = batch
    return {"loop": stamps[-1] - stamps[warmup - 1] if warmup else stamps[-1] - started,
            "before_loop": stamps[0] - started, "call": time.perf_counter() - started, "source": "/".join(sorted(sources))}


def time_batch_assembly(config, dataset, device, repeats: int) -> dict | None:
    """Seconds per batch of the two data paths, alternating: host (``make_batch`` + copy) and FeatureStore.

    Both from the same random state and both fully in memory; None where this trainer has no FeatureStore.
    """
    from wtal_kit import training

    if not hasattr(training, "FeatureStore"):
        return None
    from concurrent.futures import ThreadPoolExecutor

    split = training.Split.of(config, dataset)
    indices = [int(i) for i in split.train_indices]
    with ThreadPoolExecutor(training.batches.READ_WORKERS) as pool:
        arrays = dict(zip(indices, pool.map(dataset.features, indices)))  # the host path's cache, all of it
    store, _ = training.FeatureStore.load(arrays.__getitem__, indices, device, 1 << 50)
    sampler = training.BatchSampler(dataset.annotations.video_labels[split.train_indices], config)
    rng = np.random.default_rng(config.seed)
    batches = [split.train_indices[sampler.sample(rng)] for _ in range(repeats)]

    def host(batch):
        features, lengths = training.make_batch([arrays[int(i)] for i in batch], config.max_segments, rng)
        features = torch.from_numpy(features)
        if device.type == "cuda":
            features = features.pin_memory()
        return features.to(device, non_blocking=True), torch.from_numpy(lengths).to(device, non_blocking=True)

    times = {"host": [], "store": []}
    for r, batch in enumerate(batches + batches[:2]):  # the first two again: a warm-up of each
        for name in (("host", "store") if r % 2 == 0 else ("store", "host")):
            fn = (lambda: host(batch)) if name == "host" else (lambda: store.batch(batch, config.max_segments, rng))
            times[name].append(timed(fn, device))
    return {name: t[2:] for name, t in times.items()}


def loop_vs_step(preset: str, device, bf16: bool, iterations: int, warmup: int, repeats: int,
                 fast_step: bool = False) -> dict:
    """Time per iteration of the training loop and of its isolated step, for one preset."""
    from wtal_kit.data.catalog import load_dataset

    config = loop_config(preset, device, bf16, fast_step)
    dataset = load_dataset(config)
    step = IsolatedStep(config, dataset, device)
    for _ in range(warmup):
        step()
    before = [timed(step, device) for _ in range(repeats)]
    loop = time_training_loop(config, dataset, iterations, warmup)
    after = [timed(step, device) for _ in range(repeats)]  # the step timed both sides of the loop
    del step
    return {"config": config, "step": before + after, "loop": loop["loop"] / iterations, "iterations": iterations,
            "before_loop": loop["before_loop"], "call": loop["call"], "source": loop["source"],
            "B": config.batch_videos, "T": config.max_segments,
            "batch": time_batch_assembly(config, dataset, device, max(repeats, 10))}


def print_loop_vs_step(results: list, device, warmup: int) -> None:
    print(f"training loop vs its isolated step (embedded synthetic benchmark, THUMOS14 layout; device {device})")
    print(f"  loop: wtal_kit.training.train, iterations {warmup + 1}.. timed by an iteration callback;"
          f" step: median of calls before and after the loop [min .. max]")
    print(f"    {'config':<22s} {'loop it/s':>10s} {'step it/s':>10s} {'loop / step time':>17s}")
    for r in results:
        c = r["config"]
        name = f"{c.preset} (d={c.feature_dim}){', fast' if c.fast_step else ''}"
        step = statistics.median(r["step"])
        print(f"    {name:<22s} {1 / r['loop']:10.1f} {1 / step:10.1f} {r['loop'] / step:16.2f}x"
              f"   [step {1e3 * min(r['step']):.1f} .. {1e3 * max(r['step']):.1f} ms; B={r['B']} T<={r['T']};"
              f" {r['iterations']} loop iterations from a {r['source']}; {r['before_loop']:.1f} s before the first]")
    assembled = [r for r in results if r["batch"] is not None]
    if assembled:
        print("  one batch onto the device, the two data paths alternating (median [min .. max]):")
        for r in assembled:
            host, store = statistics.median(r["batch"]["host"]), statistics.median(r["batch"]["store"])
            print(f"    {r['config'].preset} (d={r['config'].feature_dim}): host make_batch + copy {1e3 * host:.2f} ms"
                  f" [{1e3 * min(r['batch']['host']):.2f} .. {1e3 * max(r['batch']['host']):.2f}],"
                  f" FeatureStore.batch {1e3 * store:.2f} ms"
                  f" [{1e3 * min(r['batch']['store']):.2f} .. {1e3 * max(r['batch']['store']):.2f}]:"
                  f" host / store {host / store:.1f}x")


def time_paper_run(device, bf16: bool, iterations: int = PAPER_ITERATIONS, fast_step: bool = False) -> None:
    """The paper configuration's whole run (4401 iterations, evaluated every 500 and at the end), end to end."""
    from wtal_kit.data.catalog import load_dataset
    from wtal_kit.training import Callback, train

    config = loop_config("paper", device, bf16, fast_step).replace(iterations=iterations)
    stamps, evaluations = [], []

    class Clock(Callback):
        def on_iteration(self, event):
            stamps.append(time.perf_counter())

        def on_evaluation(self, event):
            evaluations.append(time.perf_counter() - stamps[-1])

    started = time.perf_counter()
    dataset = load_dataset(config)
    with tempfile.TemporaryDirectory() as run_dir:
        result = train(config, run_dir, quiet=True, progress=False, callbacks=[Clock()], dataset=dataset)
    total = time.perf_counter() - started
    loop = stamps[-1] - stamps[0] - sum(evaluations[:-1])
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} thread(s)"
    print(f"paper config {config.iterations} iterations: {total:.1f} s end to end on {where}"
          f" ({'bf16 autocast' if bf16 else 'fp32'}{', fast step' if fast_step else ''}; embedded synthetic benchmark,"
          f" THUMOS14 layout, d={config.feature_dim})")
    print(f"  before the first iteration {stamps[0] - started:.1f} s; iterations {loop:.1f} s"
          f" ({(len(stamps) - 1) / loop:.1f} it/s); {len(evaluations)} evaluations {sum(evaluations):.1f} s;"
          f" writing the results {total - (stamps[-1] - started) - evaluations[-1]:.1f} s")
    print("  final mAP (%): " + "  ".join(f"@{k}: {100 * v:.1f}" for k, v in result.mean_ap.items()))


def mib(n_bytes) -> str:
    return "n/a" if n_bytes is None else f"{n_bytes / 2**20:,.1f} MiB"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="[auto: CUDA when present]")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls of each workload [7; 3 with --quick]")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls of each before timing [2]")
    parser.add_argument("--quick", action="store_true", help="small sizes (B=8, T=128, d=256, C=6): a smoke test")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast around the forward + losses of both")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch [torch's default]")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--profile", action="store_true", help="also print the step's top operators (torch.profiler)")
    parser.add_argument("--fast-step", action="store_true",
                        help="the training loop, its isolated step and the paper run with Config.fast_step")
    parser.add_argument("--require-target", action="store_true", help="exit with status 1 when the target is missed")
    parser.add_argument("--loop-iterations", type=int, default=None,
                        help="timed iterations of the training loop per config [CUDA: 300; CPU: 8 paper, 40 quick;"
                             " --quick: 10]; 0 skips the loop-vs-step comparison")
    parser.add_argument("--paper-iterations", type=int, nargs="?", const=PAPER_ITERATIONS, default=None, metavar="N",
                        help=f"also time the paper configuration's {PAPER_ITERATIONS} iterations (or N: a dry run) end to"
                             " end, evaluations included (about half an hour on 2 CPU cores)")
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else PAPER_SIZES

    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 7)
    if repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    if args.paper_iterations is not None and args.paper_iterations < 1:
        parser.error("--paper-iterations must be >= 1")
    if args.loop_iterations is not None and args.loop_iterations < 0:
        parser.error("--loop-iterations must be >= 0")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    step, floor = FullStep(sizes, device, args.bf16), GemmFloor(sizes, device, args.bf16)
    fast = FastStep(sizes, device, args.bf16) if LOSS_SOURCE.startswith("wtal_kit") else None  # needs the trainer

    lengths = step.lengths.tolist()
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} thread(s)"
    print(f"bench_train: full training step vs its GEMMs ({'quick sizes' if args.quick else 'paper configuration'})")
    print(f"  device {device} ({where}), torch {torch.__version__}, {'bf16 autocast' if args.bf16 else 'fp32'}")
    if args.bf16 and device.type == "cpu":
        print("  note: the trainer ignores --bf16 on CPU; this benchmark applies the autocast anyway")
    print(f"  B={sizes['batch']} T={sizes['max_len']} (valid lengths {min(lengths)}..{max(lengths)}, zero padded) "
          f"d={sizes['feature_dim']} C={sizes['num_classes']}")
    c = step.config
    print(f"  losses: {LOSS_SOURCE}")
    print(f"  config: {c.classification_loss} + {c.metric_loss} ({c.distance} distance), kappa {c.kappa:g}, "
          f"block {c.block_size}, k {c.k}, dropout {c.dropout}, Adam lr {c.lr:g}")
    if device.type == "cpu" and hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        busy = "  (other processes are running: timings may be inflated)" if load > 0.5 else ""
        print(f"  load average {load:.2f} on {os.cpu_count()} cores{busy}")

    workloads = [step] + ([fast] if fast is not None else []) + [floor]
    times = time_side_by_side(workloads, device, repeats, args.warmup)
    if args.no_memory:
        peaks = [None] * len(workloads)
    elif device.type == "cuda":
        peaks = [cuda_peak_bytes(w, device) for w in workloads]
    else:
        peaks = [cpu_peak_bytes(w) for w in workloads]
    step_times, floor_times = times[0], times[-1]

    step_median, floor_median = statistics.median(step_times), statistics.median(floor_times)
    ratio = step_median / floor_median
    memory_kind = "peak CUDA memory" if device.type == "cuda" else "peak RSS growth"
    print(f"  timings: median of {repeats} alternating calls after {args.warmup} warm-up each [min .. max]")
    for workload, t, peak in zip(workloads, times, peaks):
        print(f"    {workload.name:<48s} {1e3 * statistics.median(t):9.1f} ms  "
              f"[{1e3 * min(t):.1f} .. {1e3 * max(t):.1f}]   {memory_kind} {mib(peak)}")
    met = ratio <= TARGET_RATIO
    if args.quick:  # fixed per-call costs dominate at these sizes; the target is about the paper's
        verdict = "not judged at --quick sizes (the target is for the paper configuration)"
    else:
        verdict = "met" if met else "NOT met"
    print(f"  ratio step / GEMMs: {ratio:.2f}x (of the medians; of the minima {min(step_times) / min(floor_times):.2f}x)"
          f"   target <= {TARGET_RATIO}x: {verdict}")
    if fast is not None:
        fast_ratio = statistics.median(times[1]) / floor_median
        fast_verdict = verdict if args.quick else ("met" if fast_ratio <= TARGET_RATIO else "NOT met")
        how = "one CUDA graph replay per step" if fast.captured else "eager: no CUDA graph on this device"
        print(f"  ratio fast step / GEMMs: {fast_ratio:.2f}x (of the medians; of the minima"
              f" {min(times[1]) / min(floor_times):.2f}x; {how})   target <= {TARGET_RATIO}x: {fast_verdict}")
    if args.profile:
        print_profile(step, device)
    del step, floor, fast, workloads

    if args.loop_iterations is None or args.loop_iterations > 0 or args.paper_iterations:
        if not LOSS_SOURCE.startswith("wtal_kit"):
            print("training loop: SKIPPED (it needs the whole package: " + LOSS_SOURCE + ")")
        else:
            if args.loop_iterations is None or args.loop_iterations > 0:
                presets = ("quick",) if args.quick else LOOP_CONFIGS
                loop_warmup = max(args.warmup, 5 if args.fast_step else 1)  # the fast step: 3 eager steps, then its capture
                results = []
                for preset in presets:
                    if args.loop_iterations is not None:
                        iterations = args.loop_iterations
                    elif args.quick:
                        iterations = 10
                    else:
                        iterations = 300 if device.type == "cuda" else {"paper": 8, "quick": 40}[preset]
                    results.append(loop_vs_step(preset, device, args.bf16, iterations, loop_warmup, repeats,
                                                args.fast_step))
                print_loop_vs_step(results, device, loop_warmup)
            if args.paper_iterations:
                time_paper_run(device, args.bf16, args.paper_iterations, args.fast_step)
    return 1 if (args.require_target and not args.quick and not met) else 0


if __name__ == "__main__":
    sys.exit(main())
