"""Transcript lines -> priced usage rows, as the live tailer and the importer store them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aod.shown import shown
from aod.storage.usage import UsageRow
from aod.timefmt import normalize_iso
from aod.transcripts.lines import Line
from aod.usage.prices import PriceTable, Tokens, cost


def usage_row(line: Line, table: PriceTable, session_id: str | None = None) -> UsageRow | None:
    u = line.usage
    if u is None or line.occurred_at is None:
        return None
    tokens = Tokens(input=u.input_tokens, output=u.output_tokens, cache_write_5m=u.cache_creation_5m_tokens,
                    cache_write_1h=u.cache_creation_1h_tokens, cache_read=u.cache_read_input_tokens)
    return UsageRow(
        message_id=u.message_id, request_id=u.request_id, agent_session_id=line.session_id, model=u.model,
        input_tokens=u.input_tokens, output_tokens=u.output_tokens,
        cache_creation_input_tokens=u.cache_creation_input_tokens, cache_creation_1h_tokens=u.cache_creation_1h_tokens,
        cache_read_input_tokens=u.cache_read_input_tokens,
        # The price of the message's UTC day: a price change takes effect at a date, not a local midnight.
        cost_usd=cost(u.model, line.occurred_at[:10], tokens, table),
        occurred_at=line.occurred_at, is_sidechain=line.is_sidechain, session_id=session_id,
    )


def usage_rows(lines: Iterable[Line], table: PriceTable, session_id: str | None = None) -> list[UsageRow]:
    return [row for line in lines if (row := usage_row(line, table, session_id)) is not None]


_COUNTS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_creation_1h_tokens",
           "cache_read_input_tokens")


def _text(item: Mapping[str, Any], name: str, *, empty: bool = False) -> str:
    value = item.get(name)
    if not isinstance(value, str) or (not value and not empty) or len(value) > 512:
        raise ValueError(f"{name}: expected a string of at most 512 characters, got {shown(value)}")
    return value


def usage_item(item: object, table: PriceTable) -> UsageRow:
    """A usage item as `POST /v1/import/claude` takes it, priced; ValueError names what is wrong."""
    if not isinstance(item, dict):
        raise ValueError(f"expected an object, got {shown(item)}")
    counts = {}
    for name in _COUNTS:
        value = item.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 40:
            raise ValueError(f"{name}: expected a token count, got {shown(value)}")
        counts[name] = value
    if counts["cache_creation_1h_tokens"] > counts["cache_creation_input_tokens"]:
        raise ValueError("cache_creation_1h_tokens: more than cache_creation_input_tokens")
    try:
        occurred_at = normalize_iso(_text(item, "occurred_at"))
    except ValueError:
        raise ValueError(f"occurred_at: expected an RFC 3339 timestamp, got {shown(item.get('occurred_at'))}") from None
    sidechain = item.get("is_sidechain", False)
    if not isinstance(sidechain, bool):
        raise ValueError(f"is_sidechain: expected true or false, got {shown(sidechain)}")
    model = _text(item, "model")
    tokens = Tokens(input=counts["input_tokens"], output=counts["output_tokens"],
                    cache_write_5m=counts["cache_creation_input_tokens"] - counts["cache_creation_1h_tokens"],
                    cache_write_1h=counts["cache_creation_1h_tokens"], cache_read=counts["cache_read_input_tokens"])
    return UsageRow(
        message_id=_text(item, "message_id"), request_id=_text(item, "request_id", empty=True),
        agent_session_id=_text(item, "agent_session_id"), model=model, input_tokens=counts["input_tokens"],
        output_tokens=counts["output_tokens"], cache_creation_input_tokens=counts["cache_creation_input_tokens"],
        cache_creation_1h_tokens=counts["cache_creation_1h_tokens"],
        cache_read_input_tokens=counts["cache_read_input_tokens"], cost_usd=cost(model, occurred_at[:10], tokens, table), occurred_at=occurred_at, is_sidechain=sidechain,
    )
