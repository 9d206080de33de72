"""Transcript lines -> priced usage rows, as the live tailer and the importer store them."""

from __future__ import annotations

from collections.abc import Iterable

from aod.storage.usage import UsageRow
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
