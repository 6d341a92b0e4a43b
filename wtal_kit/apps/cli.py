"""The ``wtal`` command line.

    wtal train     train a model (embedded synthetic benchmark by default)
    wtal infer     class activations + video scores of a split -> HDF5 scores file
    wtal localize  scores file -> ActivityNet-style detections JSON
    wtal evaluate  detections JSON or scores file + ground truth -> mAP table, per-class AP
    wtal convert   W-TALC release (pickled .npy) or the embedded benchmark -> HDF5 feature store
    wtal features  your own video files -> HDF5 feature store (a Kinetics-400 video network, RGB)
    wtal explore   serve the detection explorer (Voila) on a run or scores file
    wtal sliders   serve the live hyperparameter sliders (Voila): change settings, train, compare with the paper
    wtal demo      train the default model (quick budget) on the embedded benchmark (cached), print its table, serve the explorer
    wtal reproduce train the paper's tables and figures (seeds, results store) and write their notebooks as reports

Bad input gives one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from wtal_kit.apps.flags import (
    EVAL_PROTOCOL_CHOICES,
    add_config_flags,
    add_field_flag,
    add_localization_flags,
    budgets_help,
    check_numeric_flags,
    config_from_args,
    localization_settings,
)
from wtal_kit.apps.serve import (CLOSE_GRACE, DEFAULT_IDLE_TIMEOUT, DEFAULT_POOL_SIZE, app_notebook, serve_app,
                                 serve_explorer)
from wtal_kit.errors import InputError, WtalError
from wtal_kit.video import command as features_command
from wtal_kit.timegrid import DEFAULT_SECONDS_PER_SEGMENT

EPILOG = "Numbers on the embedded synthetic benchmark are synthetic-benchmark numbers, not THUMOS14 results."


# -- commands ------------------------------------------------------------------------------
def cmd_train(args) -> int:
    from wtal_kit.data.catalog import dataset_label
    from wtal_kit.apps.printing import format_map_rows
    from wtal_kit.training import train

    config = config_from_args(args)
    run_dir = args.run_dir or Path("runs") / f"{config.preset}-seed{config.seed}"
    result = train(config, run_dir, resume=args.resume, progress=not args.no_progress)
    print(format_map_rows([(f"ours [{config.preset} preset, seed {config.seed}, checkpoint: {result.checkpoint}] — {dataset_label(config)}", result.mean_ap)]))
    print(f"\nrun directory: {result.run_dir}  ({result.seconds:.0f} s)")
    return 0


def cmd_infer(args) -> int:
    from wtal_kit.config import Config
    from wtal_kit.data.hdf5 import write_scores
    from wtal_kit.data.catalog import load_dataset, split_subsets
    from wtal_kit.training.inference import infer, resolve_device, scores_attrs
    from wtal_kit.training.runs import checkpoint_classes, load_model

    device = resolve_device(args.device or Config.device)
    model, trained = load_model(args.checkpoint, device=device)
    config = trained if args.dataset is None else trained.replace(dataset=args.dataset)
    dataset = load_dataset(config)
    annotations = dataset.annotations
    if annotations.num_classes == 0:  # one's own videos without labels (wtal features): the model's classes
        annotations = annotations.with_classes(checkpoint_classes(args.checkpoint, trained))
    subsets = sorted(set(annotations.subsets))
    subset = args.subset or (subsets[0] if len(subsets) == 1 else split_subsets(config, annotations)[1])
    indices = annotations.indices(subset)
    logits, video_probs = infer(model, dataset, indices, config, device, progress=not args.no_progress)
    out = args.out or Path(args.checkpoint).with_name(f"scores_{subset}.h5")
    attrs = scores_attrs(config, annotations.name, subset, Path(args.checkpoint).name)
    write_scores(out, annotations, indices, logits, video_probs, attrs)
    print(f"wrote {out} ({len(indices)} videos of subset '{subset}')")
    return 0


def _localizer(path: Path):
    from wtal_kit.data.hdf5 import read_scores
    from wtal_kit.localizer import Localizer

    return Localizer(read_scores(path))


def cmd_localize(args) -> int:
    from wtal_kit.data.jsonio import write_detections_json

    localizer = _localizer(args.scores)
    settings = localization_settings(args)
    detections = localizer.detections(settings)
    out = args.out or Path(args.scores).with_suffix(".detections.json")
    write_detections_json(out, detections, videos=localizer.videos,
                          external_data={**settings.to_dict(), "scores": Path(args.scores).name})
    print(f"wrote {out} ({len(detections)} detections, {settings.note()})")
    return 0


def cmd_evaluate(args) -> int:
    from wtal_kit.apps.printing import format_map_rows
    from wtal_kit.config import EVAL_PROTOCOLS, Config
    from wtal_kit.data.ground_truth import load_ground_truth
    from wtal_kit.data.jsonio import read_detections_json
    from wtal_kit.evaluate import evaluate_detections

    if (args.results is None) == (args.scores is None):
        raise InputError("give exactly one of --results (detections JSON) or --scores (HDF5 scores file)")
    thresholds = tuple(args.iou_thresholds) if args.iou_thresholds else Config.iou_thresholds
    protocols = list(EVAL_PROTOCOLS) if args.eval_protocol == "both" else [args.eval_protocol or Config.eval_protocol]
    if args.scores is not None:
        localizer = _localizer(args.scores)
        settings = localization_settings(args)
        source = f"{args.scores} ({settings.note()})"
        if args.ground_truth is None:  # the scores file's own ground truth
            evaluations = {protocol: localizer.evaluate(settings, iou_thresholds=thresholds, eval_protocol=protocol)
                           for protocol in protocols}
        else:
            ground_truth, _ = load_ground_truth(args.ground_truth, args.subset, localizer.annotations.classes)
            detections = localizer.detections(settings)
            evaluations = {protocol: evaluate_detections(ground_truth, detections, thresholds, protocol) for protocol in protocols}
    else:
        if args.ground_truth is None:
            raise InputError("--results needs --ground-truth")
        ground_truth, classes = load_ground_truth(args.ground_truth, args.subset)
        detections = read_detections_json(args.results, classes=classes)
        source = str(args.results)
        evaluations = {protocol: evaluate_detections(ground_truth, detections, thresholds, protocol) for protocol in protocols}
    print(format_map_rows([(f"{source} [{protocol} protocol]", evaluation.mean_ap)
                           for protocol, evaluation in evaluations.items()]))
    if len(protocols) > 1:
        print("(numbers from different protocols are not comparable)")
    if args.per_class:
        for protocol, evaluation in evaluations.items():
            print(f"\nper-class AP (%), {protocol} protocol")
            print((100 * evaluation.per_class).round(1).to_string())
    if args.csv is not None:
        import pandas as pd

        frames = []
        for protocol, evaluation in evaluations.items():
            frame = evaluation.per_class.copy()
            frame.insert(0, "protocol", protocol)
            frames.append(frame)
        pd.concat(frames).to_csv(args.csv, index_label="label")
        print(f"wrote {args.csv}")
    return 0


def cmd_convert(args) -> int:
    from wtal_kit.data.hdf5 import write_feature_store

    if args.out.exists() and not args.overwrite:
        raise InputError("output exists (pass --overwrite to replace it)", file=args.out)
    if args.synthetic is not None:
        from wtal_kit.config import Config
        from wtal_kit.data.catalog import load_dataset, synthetic_dataset

        config = Config(dataset=synthetic_dataset(args.synthetic), feature_dim=args.feature_dim or 2048, synthetic_seed=args.seed)
        dataset = load_dataset(config)
    else:
        if args.annotations is None or args.features is None:
            raise InputError("give --annotations FOLDER and --features FILE.npy (or --synthetic LAYOUT)")
        from wtal_kit.data.wtalc import load_wtalc_release

        dataset = load_wtalc_release(args.annotations, args.features, trust_pickle=args.trust_pickle,
                                     seconds_per_segment=args.seconds_per_segment)
    write_feature_store(args.out, dataset, progress=not args.no_progress)
    print(f"wrote {args.out}: {len(dataset)} videos, d={dataset.feature_dim}, {dataset.annotations.num_classes} classes")
    return 0


def cmd_demo(args) -> int:
    from wtal_kit.apps.demo import demo_config, run_demo

    config = demo_config() if args.iterations is None else demo_config().replace(iterations=args.iterations, eval_every=args.iterations)
    run_demo(args.run_dir, force=args.force, progress=not args.no_progress, config=config)
    if args.no_serve:
        return 0
    run_dir = Path(args.run_dir).resolve()
    print("\nStarting the detection explorer on this run (first start: a few seconds) ...", flush=True)
    return serve_explorer(run_dir, [], [str(run_dir)], port=args.port, pool_size=args.pool_size, idle_timeout=args.idle_timeout)


def cmd_reproduce(args) -> int:
    from wtal_kit.experiments import default_workers, mode_name
    from wtal_kit.experiments.notebooks import reproduce

    if args.executor == "ray":  # --workers < 1: refused before any command, by check_numeric_flags
        if args.workers is not None:
            raise InputError("--workers is for --executor local (Ray runs as many tasks as the cluster has room for)",
                             field="workers")
    elif args.address is not None or args.gpus_per_task is not None:
        raise InputError("--address and --gpus-per-task are for --executor ray", field="executor")
    mode = mode_name(args.mode)
    for flag, path in (("--features", args.features), ("--activitynet-features", args.activitynet_features)):
        if path is not None:
            if mode != "paper":
                raise InputError(f"{flag} is for --mode paper (smoke and small use the embedded benchmark)", field=flag[2:])
            if not Path(path).is_file():
                raise InputError("no such feature store (make one with `wtal convert`)", file=path)
    device = args.device or "auto"
    workers = args.workers or (1 if args.executor == "ray" else default_workers(device))
    summary = reproduce(args.only, mode, args.seeds, store=args.store, out_dir=args.out, features=args.features,
                        activitynet_features=args.activitynet_features, device=device, workers=workers,
                        progress=not args.no_progress, executor=args.executor, address=args.address,
                        gpus_per_task=args.gpus_per_task)
    failed = summary["grid"]["failed"] or not all(item["ok"] for item in summary["notebooks"])
    return 1 if failed else 0


def cmd_explore(args) -> int:
    from wtal_kit.data.hdf5 import read_scores
    from wtal_kit.data.jsonio import read_detections_json
    from wtal_kit.data.runfolder import CONFIG

    source = Path(args.source).resolve()
    if source.is_dir():
        if not (source / CONFIG).is_file():
            raise InputError("not a run folder (no config.json)", file=source)
        classes = None
    else:
        classes = read_scores(source).annotations.classes  # one clear line if it is not a scores file
    compare = []
    for item in args.compare or []:
        name, _, path = item.partition("=")
        if not name or not path:
            raise InputError(f"--compare takes NAME=RESULTS.json, got {item!r}", field="compare")
        read_detections_json(path, classes=classes)  # fail here, in one line, rather than in the page
        compare.append(f"{name}={Path(path).resolve()}")
    roots = [str(Path(root).resolve()) for root in (args.root or [])] or [str(source if source.is_dir() else source.parent)]
    videos = None
    if args.videos is not None:
        videos = Path(args.videos).resolve()
        if not videos.is_dir():
            raise InputError("not a folder of videos", file=args.videos, field="videos")
    return serve_explorer(source, compare, roots, host=args.host, port=args.port, pool_size=args.pool_size,
                          idle_timeout=args.idle_timeout, videos=videos)


def cmd_sliders(args) -> int:
    from wtal_kit.apps import sessions

    if args.time_preset:
        timing = sessions.time_preset(args.preset, args.layout, device=args.device or "cpu", threads=args.threads)
        print(f"{timing['preset']} preset, {timing['layout']} layout (d={timing['feature_dim']}, {timing['iterations']} "
              f"iterations) on {timing['device']}: {timing['seconds']:.1f} s wall, {timing['cpu_seconds']:.1f} s CPU, with "
              f"{timing['threads']} torch thread(s) ({timing['cpus']} CPUs, load average {timing['load']:.1f} at the end: "
              f"more than the CPUs means other jobs slowed it); mAP avg {100 * timing['map_avg']:.1f} "
              "(embedded synthetic benchmark)")
        return 0
    store = Path(args.store).resolve()
    if store.exists() and not store.is_dir():
        raise InputError("not a folder", file=store)
    return serve_app(app_notebook("sliders"), "The hyperparameter sliders app", "sliders",
                     {"store": store, "preset": args.preset, "layout": args.layout, "workers": args.workers},
                     host=args.host, port=args.port, browser=not args.no_browser, pool_size=args.pool_size,
                     idle_timeout=args.idle_timeout)


# -- parser ----------------------------------------------------------------------------------
def add_kernel_flags(parser) -> None:
    """--pool-size and --idle-timeout of a served app (wtal_kit.apps.serve)."""
    group = parser.add_argument_group("kernels (one per open page)")
    group.add_argument("--pool-size", type=int, default=DEFAULT_POOL_SIZE, metavar="N",
                       help="kernels that have already run the app and wait for the next page (opens in about a second; "
                            f"each holds the app's memory); 0: every page starts its own [{DEFAULT_POOL_SIZE}]")
    group.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT, metavar="SECONDS",
                       help=f"a closed page's kernel is shut down {CLOSE_GRACE:g} s after its page closed; one that no page "
                            f"ever reached is culled after this many seconds without activity [{DEFAULT_IDLE_TIMEOUT:g}]")


def build_parser() -> argparse.ArgumentParser:
    from wtal_kit.apps.sessions import DEFAULT_PRESET, PRESETS
    from wtal_kit.data.catalog import LAYOUTS
    from wtal_kit.experiments import ALL_NAMES, DEFAULT_MODE, DEFAULT_STORE, EXECUTORS, MODES, OLD_MODE_NAMES

    parser = OneLineParser(prog="wtal", description=__doc__.split("\n\n")[0] + " — weakly-supervised temporal action "
                                     "localization with deep metric learning (Islam & Radke, WACV 2020).",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train a model", description="Train on the embedded synthetic benchmark (default) or an HDF5 feature store.",
                       epilog=EPILOG)
    p.add_argument("--run-dir", type=Path, default=None, help="where checkpoints, logs and results go [runs/<preset>-seed<seed>]")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoint.pt (the same config is required)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_config_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("infer", help="class activations of a split -> HDF5 scores file")
    p.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint.pt written by `wtal train`")
    p.add_argument("--dataset", default=None, help="override the dataset of the checkpoint's config (synthetic-thumos14, store.h5, ...)")
    p.add_argument("--subset", default=None, help="which subset to score [the config's test subset]")
    p.add_argument("--out", type=Path, default=None, help="output scores file [next to the checkpoint: scores_<subset>.h5]")
    add_field_flag(p, "device", default_note="default")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser("localize", help="scores file -> ActivityNet-style detections JSON")
    p.add_argument("--scores", type=Path, required=True, help="HDF5 scores file from `wtal infer` / `wtal train`")
    p.add_argument("--out", type=Path, default=None, help="output JSON [<scores>.detections.json]")
    add_localization_flags(p)
    p.set_defaults(func=cmd_localize)

    p = sub.add_parser("evaluate", help="detections or scores + ground truth -> mAP table")
    p.add_argument("--results", type=Path, default=None, help="ActivityNet-style detections JSON")
    p.add_argument("--scores", type=Path, default=None, help="HDF5 scores file (localized on the fly; its ground truth is used unless --ground-truth)")
    p.add_argument("--ground-truth", type=Path, default=None, help="ActivityNet-style ground-truth JSON, W-TALC annotation folder or wtal-kit HDF5 file")
    p.add_argument("--subset", default=None, help="restrict the ground truth to this subset (e.g. test)")
    group = p.add_argument_group("evaluation")
    add_field_flag(group, "eval_protocol", "--eval-protocol", "--protocol", choices=EVAL_PROTOCOL_CHOICES, default_note="default")
    add_field_flag(group, "iou_thresholds", "--iou-thresholds", "--iou", default_note="default")
    add_localization_flags(p, "with --scores: localization")
    p.add_argument("--per-class", action="store_true", help="also print the per-class AP table")
    p.add_argument("--csv", type=Path, default=None, help="write the per-class AP table to this CSV")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("convert", help="W-TALC release or embedded benchmark -> HDF5 feature store")
    p.add_argument("--annotations", type=Path, default=None, help="W-TALC annotation folder (videoname.npy, segments.npy, ...)")
    p.add_argument("--features", type=Path, default=None, help="<Dataset>-I3D-JOINTFeatures.npy (a pickle: needs --trust-pickle)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow loading the pickled feature file; a pickle can run code, so only for files from a source you trust")
    p.add_argument("--synthetic", choices=LAYOUTS, default=None, help="write the embedded synthetic benchmark on this layout instead")
    p.add_argument("--feature-dim", type=int, default=None, help="with --synthetic: feature dimension [2048]")
    p.add_argument("--seed", type=int, default=0, help="with --synthetic: benchmark seed [0]")
    p.add_argument("--seconds-per-segment", type=float, default=DEFAULT_SECONDS_PER_SEGMENT, help="duration of one feature segment [0.64 = 16 frames at 25 fps]")
    p.add_argument("--out", type=Path, required=True, help="output HDF5 feature store")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_convert)

    features_command.add_parser(sub)  # wtal features: your own videos -> a feature store (wtal_kit.video)

    p = sub.add_parser("explore", help="serve the detection explorer (a Voila app) on a run or a scores file",
                       description="Serve the detection explorer on a run folder or scores file; --compare adds other methods' results.")
    p.add_argument("source", nargs="?", default="runs/demo", help="a run folder or a scores file [runs/demo]")
    p.add_argument("--compare", action="append", metavar="NAME=RESULTS.json", help="an ActivityNet-style results JSON to compare (repeatable)")
    p.add_argument("--videos", type=Path, default=None, metavar="DIR",
                   help="a folder of the run's video files (matched to its videos by file name; needs the [video] extra): "
                        "the frame under the time cursor and thumbnails along the video [none]")
    p.add_argument("--host", default="127.0.0.1", help="address to bind; anything but loopback is reachable by others (no authentication) [127.0.0.1]")
    p.add_argument("--port", type=int, default=None, help="port [8866, or the next free one]")
    p.add_argument("--root", action="append", metavar="FOLDER", help="folders the page may open files from (repeatable) [the source's folder]")
    add_kernel_flags(p)
    p.set_defaults(func=cmd_explore)

    p = sub.add_parser("demo", help="train the quick model on the embedded benchmark (cached) and print its mAP table")
    p.add_argument("--run-dir", type=Path, default=Path("runs/demo"), help="where the demo run lives [runs/demo]")
    p.add_argument("--force", action="store_true", help="retrain even if a finished run with the same config exists")
    p.add_argument("--no-serve", action="store_true", help="print the table and exit instead of serving the explorer")
    p.add_argument("--port", type=int, default=None, help="explorer port [8866, or the next free one]")
    p.add_argument("--iterations", type=int, default=None,
                   help="train this many iterations instead of the preset's (a smoke test: the result is not the default model) [1500]")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_kernel_flags(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("sliders", help="serve the live hyperparameter sliders (a Voila app): change settings, train, compare",
                       description="Serve the live hyperparameter sliders: change the method's hyperparameters, train in the "
                                   "background and compare the runs with the paper's rows; runs share the reproduction's "
                                   "results store.", epilog=EPILOG)
    p.add_argument("--store", type=Path, default=Path(DEFAULT_STORE), help=f"the results store [{DEFAULT_STORE}]")
    p.add_argument("--preset", choices=tuple(PRESETS), default=DEFAULT_PRESET,
                   help=f"the budget the page starts from: {budgets_help(PRESETS)} [{DEFAULT_PRESET}]")
    p.add_argument("--layout", choices=LAYOUTS, default="thumos14", help="dataset layout the page starts on [thumos14]")
    p.add_argument("--workers", type=int, default=None, help="trainings at once [2 with 2 or more CPU cores or a GPU, else 1]")
    p.add_argument("--host", default="127.0.0.1", help="address to bind; anything but loopback is reachable by others (no authentication) [127.0.0.1]")
    p.add_argument("--port", type=int, default=None, help="port [8866, or the next free one]")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser, only print the address")
    p.add_argument("--time-preset", action="store_true",
                   help="serve nothing: train the preset's full method once, alone, and print how long it took")
    p.add_argument("--threads", type=int, default=None,
                   help="--time-preset: torch CPU threads (1: CPU seconds that hardly depend on other jobs) [one per core]")
    add_field_flag(p, "device", default_note="default; --time-preset only, where it means cpu")
    add_kernel_flags(p)
    p.set_defaults(func=cmd_sliders)

    p = sub.add_parser("reproduce", help="train the paper's tables and figures and write them as reports",
                       description="Train every config x seed of the paper's tables and figures that the results store lacks, "
                                   "then execute the reproduction notebooks headless and write executed notebooks, HTML pages, "
                                   "CSV tables, figures and an index page.", epilog=EPILOG)
    p.add_argument("--mode", choices=MODES + tuple(OLD_MODE_NAMES), default=DEFAULT_MODE,
                   help="the budget of every run: " + budgets_help(MODES)
                        + f" (before 0.2 small was 'quick' and paper 'full': both still work, with a warning) [{DEFAULT_MODE}]")
    p.add_argument("--only", nargs="+", metavar="NAME", choices=ALL_NAMES, default=None,
                   help=f"only these artefacts: {', '.join(ALL_NAMES)} [all]")
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="seeds of every config [0 1 2; smoke: 0 1]")
    p.add_argument("--features", type=Path, default=None,
                   help="--mode paper: an HDF5 feature store of THUMOS14 (`wtal convert`) [the embedded benchmark at d=2048]")
    p.add_argument("--activitynet-features", type=Path, default=None,
                   help="--mode paper: an HDF5 feature store of ActivityNet1.2 for Table 2 [the embedded benchmark]")
    add_field_flag(p, "device", default_note="default")
    p.add_argument("--workers", type=int, default=None, help="training processes at once [CPU: cores, at most 4; GPU: 4]")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: worker processes on this machine; ray: one Ray task per config x seed "
                        "(pip install -e '.[cluster]') [local]")
    p.add_argument("--address", default=None, metavar="auto|HOST:PORT",
                   help="--executor ray: the Ray cluster to join [the one `ray start` made here, else a new local instance]")
    p.add_argument("--gpus-per-task", type=float, default=None, metavar="N",
                   help="--executor ray: GPUs each training asks for, a fraction allowed (0: CPU only) "
                        "[1 where the cluster has GPUs, else 0]")
    p.add_argument("--store", type=Path, default=Path(DEFAULT_STORE), help=f"the results store [{DEFAULT_STORE}]")
    p.add_argument("--out", type=Path, default=None, help="where the reports go [reports/<mode>]")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_reproduce)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"wtal: warning: {message}\n"


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr and exit code 2, like every other wtal error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])  # wtal_kit/


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """In the CLI, wtal-kit's own warnings (UserWarnings and FutureWarnings raised in wtal_kit) are one line
    each; a library's (torch, numpy, h5py; also a numpy RuntimeWarning from a computation in wtal_kit) are not."""
    if issubclass(category, (UserWarning, FutureWarning)) and str(Path(filename).resolve()).startswith(_PACKAGE_DIR):
        print(f"wtal: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv=None) -> int:
    warnings.formatwarning = _one_line_warning  # e.g. "detection labels absent from the ground truth are ignored"
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            check_numeric_flags(args)
            return args.func(args)
    except WtalError as exc:
        print(f"wtal {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, file size limit, read-only or forbidden folder: one line too
        from wtal_kit.atomic import disk_error_line

        line = disk_error_line(exc)
        if line is None:
            raise
        print(f"wtal {args.command}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"wtal {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())


# 0.1's names of this module that moved (wtal_kit/legacy.py): they warn, and go away in 0.3
from wtal_kit import legacy  # noqa: E402

__getattr__ = legacy.old_names("wtal_kit.apps.cli")  # its own name, also when run as __main__
