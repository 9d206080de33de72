"""What every command needs first: the effective config, or a clear message why not."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from aod.config import Config, ConfigError, load_config

EXIT_CONFIG = 2


def config_from_args_or_raise(args: argparse.Namespace) -> Config:
    return load_config(
        getattr(args, "config", None),
        data_dir=getattr(args, "data_dir", None),
        socket=getattr(args, "socket", None),
        tcp=getattr(args, "tcp", None),  # `aod serve --tcp` only
    )


def config_from_args(args: argparse.Namespace) -> Config:
    try:
        return config_from_args_or_raise(args)
    except ConfigError as exc:
        print(f"aod: invalid config: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def socket_from_args(args: argparse.Namespace) -> Path:
    """The daemon's socket, even when the config file is invalid.

    A running daemon keeps its last good config and reports the broken file in `/v1/status`;
    refusing to ask it would hide exactly that report. Paths come from the flags, the
    environment and whatever the file says about them (as the hook client reads it).
    """
    try:
        return config_from_args_or_raise(args).socket_path
    except ConfigError as exc:
        print(f"aod: warning: invalid config ({exc}); asking the daemon anyway", file=sys.stderr)
    from aod import paths

    env = dict(os.environ)
    if getattr(args, "config", None):
        env["AOD_CONFIG"] = args.config
    doc, base = paths.read_config(env, sys.platform)
    _, socket_path = paths.runtime_paths(
        doc, base, data_dir=getattr(args, "data_dir", None), socket=getattr(args, "socket", None), env=env,
    )
    return Path(socket_path)
