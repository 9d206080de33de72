"""What a Claude message cost: the dated price table shipped in prices.json, with the config's
`[usage.prices."model"]` tables over it.

Two deliberate differences from ccusage, which prices from the same LiteLLM figures: a 1-hour
cache write is priced as one (Anthropic bills it at twice the input price, ccusage at the 5-minute
price), and the long-context tier applies to every token of a request whose input exceeds 200k
tokens, as Anthropic bills it (ccusage prices only each kind's tokens above 200k at the higher
rate). Below 200k input tokens and with 5-minute cache writes the two agree to the cent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from aod.config import Config, PriceRates, UsageConfig

LONG_CONTEXT_THRESHOLD = 200_000
PER_MILLION = 1_000_000
# Claude Code writes this model name on the messages it makes up itself (an API error shown as a
# reply): no request was billed.
SYNTHETIC = "<synthetic>"
KINDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
_DATED = re.compile(r"-\d{8}$")


@dataclass(frozen=True)
class Rates:
    """USD per million tokens."""

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float


@dataclass(frozen=True)
class Price:
    since: str  # YYYY-MM-DD: from this day on
    base: Rates
    long_context: Rates | None = None


@dataclass(frozen=True)
class Tokens:
    input: int
    output: int
    cache_write_5m: int
    cache_write_1h: int
    cache_read: int

    @property
    def prompt(self) -> int:
        return self.input + self.cache_write_5m + self.cache_write_1h + self.cache_read


PriceTable = Mapping[str, tuple[Price, ...]]


def _rates(table: Mapping[str, Any], where: str) -> Rates:
    try:
        return Rates(**{kind: float(table[kind]) for kind in KINDS})
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: expected numbers for {', '.join(KINDS)} ({exc})") from None


def parse_table(doc: Mapping[str, Any]) -> dict[str, tuple[Price, ...]]:
    table = {}
    for model, entries in doc.items():
        prices = []
        for entry in entries:
            long = entry.get("long_context")
            prices.append(Price(since=str(entry.get("from", "0001-01-01")), base=_rates(entry, model),
                                long_context=_rates(long, f"{model}.long_context") if long else None))
        table[model] = tuple(sorted(prices, key=lambda p: p.since))
    return table


@cache
def shipped() -> dict[str, tuple[Price, ...]]:
    text = resources.files("aod.usage").joinpath("prices.json").read_text(encoding="utf-8")
    return parse_table(json.loads(text)["models"])


def family(model: str, table: PriceTable) -> str | None:
    """The table's name for `model`: itself or itself without its date suffix. Never a longer
    name's prefix: "claude-opus-4-8" priced as "claude-opus-4" would be a silent wrong price."""
    if model in table:
        return model
    undated = _DATED.sub("", model)
    return undated if undated in table else None


def price_on(model: str, day: str, table: PriceTable) -> Price | None:
    name = family(model, table)
    if name is None:
        return None
    entries = table[name]
    # A message from before the first dated entry (a model's preview) takes the first price.
    current = entries[0]
    for entry in entries:
        if entry.since <= day:
            current = entry
    return current


def cost(model: str, day: str, tokens: Tokens, table: PriceTable) -> float | None:
    """USD, or None when the model has no price (counted and flagged by the caller, never 0)."""
    if model == SYNTHETIC:
        return 0.0
    price = price_on(model, day, table)
    if price is None:
        return None
    rates = price.base
    if price.long_context is not None and tokens.prompt > LONG_CONTEXT_THRESHOLD:
        rates = price.long_context
    return (tokens.input * rates.input + tokens.output * rates.output + tokens.cache_write_5m * rates.cache_write_5m
            + tokens.cache_write_1h * rates.cache_write_1h + tokens.cache_read * rates.cache_read) / PER_MILLION


def _from_config(rates: PriceRates) -> Rates:
    return Rates(rates.input, rates.output, rates.cache_write_5m, rates.cache_write_1h, rates.cache_read)


def configured(config: Config) -> PriceTable:
    """The shipped table with `[usage.prices."model"]` over it; rebuilt only when the config changed."""
    global _last
    if _last is None or _last[0] is not config.usage:
        _last = (config.usage, _with(config.usage))
    return _last[1]


_last: tuple[UsageConfig, PriceTable] | None = None


def _with(usage: UsageConfig) -> PriceTable:
    table = dict(shipped())
    for model, price in usage.prices.items():
        long = None if price.long_context is None else _from_config(price.long_context)
        table[model] = (Price(since="0001-01-01", base=_from_config(price.base), long_context=long),)
    return table
