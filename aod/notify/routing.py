"""Whether escalations reach anyone, and the one start-up warning when they do not."""

from __future__ import annotations

import logging

from aod.config import Config

log = logging.getLogger("aod.notify")

UNROUTED = "no notifier is routed: escalations will be recorded (see `aod escalations`) but reach no one"
HOW_TO_ROUTE = (
    "install notify-send (urgent escalations then go to the desktop), or add [notifiers.NAME] with"
    ' type = "command", "webhook" or "desktop" and route priorities to it under [routing]'
    ' (urgent = ["NAME"]) in the config file'
)


def routed(config: Config) -> bool:
    return any(config.routing.values())


def warn_if_unrouted(config: Config) -> None:
    # Said once, at start: the default reactions page on every permission prompt, and a page
    # nobody receives is only visible to someone who already knows where to look.
    if not routed(config):
        log.warning(UNROUTED, extra={"fix": HOW_TO_ROUTE,
                                     "config": str(config.config_path) if config.config_path else None})
