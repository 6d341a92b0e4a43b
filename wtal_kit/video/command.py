"""``wtal features``: per-segment features of one's own video files -> an HDF5 feature store.

Two functions for the CLI: :func:`add_parser` adds the subcommand to ``wtal``'s subparsers,
:func:`run` carries it out. A bad input raises :class:`~wtal_kit.errors.InputError` (the CLI
prints its one line and exits with code 2).
"""

from __future__ import annotations

import argparse

# Literals, so that building wtal's parser imports no torch (tests/test_video.py checks they match
# wtal_kit.video.backbone.BACKBONES and wtal_kit.video.extract.DEFAULT_BATCH_SIZE).
BACKBONES = ("r3d_18", "mc3_18", "r2plus1d_18")
DEFAULT_BATCH_SIZE = 16

DESCRIPTION = """\
Cut each video into 0.64 s segments (16 frames at 25 fps, the paper's time grid) and write one
512-d feature per segment, from a Kinetics-400 video network (RGB only), into an HDF5 feature store
that `wtal train --dataset STORE.h5 --feature-dim 512` trains on. A killed run keeps the videos it
finished; run the same command again to go on. A damaged video is one line on stderr; the others
are written. Exit code 0, or 1 when some videos failed (the store holds the others), 2 on bad input.
These features are not W-TALC's I3D features: a model trained on those needs those."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``features`` to ``wtal``'s subparsers (``parser.add_subparsers(...)``); returns its parser."""
    p = subparsers.add_parser("features", help="features of your own video files -> HDF5 feature store",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="+", metavar="VIDEO_OR_DIR",
                   help="video files, or folders of them (.mp4 .avi .mkv .mov .webm .m4v, not recursive); "
                        "a video is named by its file name without extension")
    p.add_argument("--out", required=True, metavar="STORE.h5", help="the feature store to write (.h5 or .hdf5)")
    p.add_argument("--backbone", choices=BACKBONES, default="r2plus1d_18",
                   help="the Kinetics-400 network (default: %(default)s)")
    p.add_argument("--weights", default="default", metavar="default|random|FILE",
                   help="'default': torchvision's Kinetics-400 weights, downloaded once into the torch cache; "
                        "'random': a seeded random network (offline tests; the features mean nothing); FILE: a state "
                        "dict with torchvision's parameter names (default: %(default)s)")
    p.add_argument("--annotations", default=None, metavar="FILE",
                   help="ActivityNet-style ground-truth JSON: the store keeps its videos, subsets, classes and "
                        "instances (default: none: every video in subset 'test', no classes; for inference only)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where the network runs; auto: CUDA when present (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N",
                   help="clips (segments) per forward pass (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """Extract, print one summary line; 0, or 1 when some videos failed."""
    from wtal_kit.video.extract import run_extraction

    summary = run_extraction(args.videos, args.out, backbone=args.backbone, weights=args.weights,
                             annotations=args.annotations, device=args.device, batch_size=args.batch_size,
                             progress=not args.no_progress)
    print(summary.line())
    return 1 if summary.failed else 0
