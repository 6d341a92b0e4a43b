"""Command-line flags generated from the one typed :class:`~wtal_kit.config.Config`: each field's
type, choices and help text make its ``--field-name`` flag, so a default or a help line is written
once, in the config. Also the checks of flags that no config field validates (a port, a count).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import typing
from pathlib import Path

from wtal_kit import checks
from wtal_kit.config import FIELD_CHOICES, LOCALIZATION_FIELDS, PRESETS, BUDGETS, EVAL_PROTOCOLS, Config, LocalizationSettings, field_help
from wtal_kit.errors import InputError

# -- config flags, generated from the Config dataclass (its field metadata is the help) ------------
# --kappa none: the parsed value, turned into kappa=None by config_from_args. An object of its own, not the
# text "none", which is also a value of a choice flag (--metric-loss none).
NO_CLIPPING = type("NoneFlag", (), {"__repr__": lambda self: "none"})()
OPTIONAL_INT_FIELDS = ("min_length", "max_per_video")  # int | None fields: 'none' gives None


def _kappa(text: str):
    return NO_CLIPPING if text.lower() in ("none", "null", "off") else float(text)


def _optional_int(text: str):
    return NO_CLIPPING if text.lower() in ("none", "null", "off") else int(text)


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


@functools.lru_cache(maxsize=1)
def _config_types() -> dict:
    """Config's field types, resolved once (the parser asks for one per flag, some 50 flags at every start)."""
    return typing.get_type_hints(Config)


def add_field_flag(group, name: str, *flags: str, choices=None, default_note: str = "paper") -> None:
    """One ``--field-name`` flag for a Config field: its type, choices and help come from the field."""
    hint = _config_types()[name]
    default = getattr(Config, name)
    flags = flags or ("--" + name.replace("_", "-"),)
    text = f"{field_help(name)} [{default_note}: {default}]"
    if hint is bool:
        group.add_argument(*flags, dest=name, type=_bool, default=None, metavar="BOOL", help=text)
    elif name == "iou_thresholds":
        group.add_argument(*flags, dest=name, type=float, nargs="+", default=None, metavar="T", help=text)
    elif name == "kappa":
        group.add_argument(*flags, dest=name, type=_kappa, default=None, metavar="KAPPA", help=text + " ('none' disables clipping)")
    elif name in OPTIONAL_INT_FIELDS:
        group.add_argument(*flags, dest=name, type=_optional_int, default=None, metavar="N", help=text)
    elif name in FIELD_CHOICES or choices is not None:
        group.add_argument(*flags, dest=name, choices=choices or FIELD_CHOICES[name], default=None, help=text)
    elif hint in (int, float, str):
        group.add_argument(*flags, dest=name, type=hint, default=None, help=text)
    else:  # str | None
        group.add_argument(*flags, dest=name, type=str, default=None, help=text)


def budgets_help(names) -> str:
    """What each named budget is (:data:`wtal_kit.config.BUDGETS`), for a flag's help: 'paper: ...; quick: ...'."""
    return "; ".join(f"{name}: {BUDGETS[name][1]}" for name in names)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("config (override the preset; defaults shown are the paper preset's)")
    group.add_argument("--preset", choices=PRESETS, default=None,
                       help="start from this budget: " + budgets_help(PRESETS) + " [paper]")
    group.add_argument("--config", type=Path, default=None, help="start from a config JSON (e.g. a run's config.json)")
    for field in dataclasses.fields(Config):
        if field.name != "preset":
            add_field_flag(group, field.name)


def given_fields(args, names) -> dict:
    """The config fields given on the command line (a flag left out is None; 'none' means None)."""
    changes = {}
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = None if value is NO_CLIPPING else value
    return changes


def config_from_args(args):
    if args.config is not None:
        config = Config.from_json(args.config)
        if args.preset is not None:
            raise InputError("give either --config or --preset, not both", field="preset")
    else:
        config = Config.from_preset(args.preset or "paper")
    return config.replace(**given_fields(args, [f.name for f in dataclasses.fields(Config) if f.name != "preset"]))


def localization_settings(args) -> LocalizationSettings:
    """The five localization settings from the flags, the defaults where not given."""
    return LocalizationSettings(**given_fields(args, LOCALIZATION_FIELDS))


def add_localization_flags(parser, title: str = "localization") -> None:
    """--threshold, --gamma, --localization (alias --protocol for `wtal localize`), --min-length, --max-per-video, from Config."""
    group = parser.add_argument_group(title)
    add_field_flag(group, "localization", "--localization", *(["--protocol"] if title == "localization" else []), default_note="default")
    for name in ("threshold", "gamma", "min_length", "max_per_video"):
        add_field_flag(group, name, default_note="default")


EVAL_PROTOCOL_CHOICES = (*EVAL_PROTOCOLS, "both")  # wtal evaluate --protocol: each protocol, or all of them


def check_numeric_flags(args) -> None:
    """Flags that no Config field validates: a port must be one, a count positive."""
    port = getattr(args, "port", None)
    if port is not None and not 1 <= port <= 65535:
        raise InputError(f"--port must be in 1..65535, got {port}")
    for name in ("workers", "threads", "iterations", "feature_dim"):
        value = getattr(args, name, None)
        if value is not None and not 1 <= value <= checks.MAX_INT:
            raise InputError(f"--{name.replace('_', '-')} must be a positive integer (at most {checks.MAX_INT}), got {value}")
    pool_size = getattr(args, "pool_size", None)
    if pool_size is not None and not 0 <= pool_size <= 16:
        raise InputError(f"--pool-size must be in 0..16 (each kernel holds the app's memory), got {pool_size}")
    idle_timeout = getattr(args, "idle_timeout", None)
    if idle_timeout is not None and not (math.isfinite(idle_timeout) and idle_timeout > 0):
        raise InputError(f"--idle-timeout must be a number of seconds > 0, got {idle_timeout:g}")


