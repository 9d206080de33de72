"""What every command needs first: the effective config, or a clear message why not."""

from __future__ import annotations

import argparse
import sys

from aod.config import Config, ConfigError, load_config

EXIT_CONFIG = 2


def config_from_args(args: argparse.Namespace) -> Config:
    try:
        return load_config(
            getattr(args, "config", None),
            data_dir=getattr(args, "data_dir", None),
            socket=getattr(args, "socket", None),
        )
    except ConfigError as exc:
        print(f"aod: invalid config: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
