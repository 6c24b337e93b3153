"""One checkpoint step per batch, owning the order that makes a crash at any point safe:

1. dead letters sent (the record is kept with its reason before it is passed over);
2. rows stored in ClickHouse (the writer retries until they are: the stream holds meanwhile);
3. one changelog record per changed state key (a tombstone for a key gone from its store), and the broker
   has acknowledged them all;
4. the batch is acknowledged, so its offsets may be committed (Faust commits acknowledged offsets).

A crash before 3 replays the batch on the old state (same rows, replaced in ClickHouse); a crash after 3
finds its events already applied (deduplicated by event time and id, or by offset).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from core.tables import TableSpec
from streams.processor import BatchResult, DeadLetter, Stores


class RowWriter(Protocol):
    async def write(self, batch: Mapping[TableSpec, Sequence[Sequence[Any]]]) -> None: ...


#: (state table, [(key, partition, value or None)]) -> when the broker has them all
ChangelogWriter = Callable[[str, Sequence[tuple[str, int, Any]]], Awaitable[None]]
DeadLetterWriter = Callable[[DeadLetter], Awaitable[None]]


class Checkpoint:
    def __init__(self, rows: RowWriter, changelog: ChangelogWriter, dead_letters: DeadLetterWriter,
                 on_stored: Callable[[], None] = lambda: None) -> None:
        self.rows = rows
        self.changelog = changelog
        self.dead_letters = dead_letters
        self.on_stored = on_stored  # a sign of progress (the stall watchdog)

    async def commit(self, result: BatchResult, stores: Stores) -> None:
        """Steps 1-3; when it returns, the caller acknowledges the batch (step 4)."""
        for dl in result.dead_letters:
            await self.dead_letters(dl)
        await self.rows.write(result.rows)
        self.on_stored()
        for store_name, keys in result.changed.items():
            if keys:
                store = stores[store_name]
                await self.changelog(store_name, [(k, p, store.get(k)) for k, p in keys.items()])
