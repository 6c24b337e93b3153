"""One checkpoint step per batch, owning the order that makes a crash at any point safe:

1. dead letters sent (the record is kept with its reason before it is passed over);
2. rows stored in ClickHouse (the writer retries until they are: the stream holds meanwhile); rows
   ClickHouse refuses for what they hold come back and are dead-lettered (the raw event behind a raw row);
3. messages to other processors (``BatchResult.messages``) sent, and acknowledged by the broker;
4. one changelog record per changed state key (a tombstone for a key gone from its store), and the broker
   has acknowledged them all;
5. the batch is acknowledged, so its offsets may be committed (Faust commits acknowledged offsets).

A crash before 4 replays the batch on the old state (same rows, replaced in ClickHouse; messages sent again,
which their reader takes as repeats); a crash after 4 finds its events already applied (deduplicated by event
time and id, or by offset).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.tables import TableSpec
from streams.processor import BatchResult, DeadLetter, Message, Record, Stores
from streams.runtime.faults import NO_FAULTS, Faults


@dataclass(frozen=True)
class Rejected:
    """A row ClickHouse refused (the error is the row's fault: retrying cannot store it)."""

    table: str
    row: dict[str, Any]
    error: str


class RowWriter(Protocol):
    async def write(self, batch: Mapping[TableSpec, Sequence[Sequence[Any]]]) -> Sequence[Rejected]: ...


#: (state table, [(key, partition, value or None)]) -> when the broker has them all
ChangelogWriter = Callable[[str, Sequence[tuple[str, int, Any]]], Awaitable[None]]
DeadLetterWriter = Callable[[DeadLetter], Awaitable[None]]
#: messages to other processors -> when the broker has them all
MessageWriter = Callable[[Sequence[Message]], Awaitable[None]]


async def _no_messages(messages: Sequence[Message]) -> None:
    if messages:
        raise RuntimeError("this processor declares no outputs but its engine returned messages")


class Checkpoint:
    def __init__(self, rows: RowWriter, changelog: ChangelogWriter, dead_letters: DeadLetterWriter,
                 on_stored: Callable[[], None] = lambda: None,
                 rejected_letter: Callable[[Rejected], DeadLetter] = lambda r: rejected_row_letter(r),
                 faults: Faults = NO_FAULTS, messages: MessageWriter = _no_messages) -> None:
        self.rows = rows
        self.messages = messages
        self.changelog = changelog
        self.dead_letters = dead_letters
        self.on_stored = on_stored  # a sign of progress (the stall watchdog)
        self.rejected_letter = rejected_letter
        self.faults = faults  # tests only: a crash between the steps below

    async def commit(self, result: BatchResult, stores: Stores) -> None:
        """Steps 1-4; when it returns, the caller acknowledges the batch (step 5)."""
        for dl in result.dead_letters:
            await self.dead_letters(dl)
        for refused in await self.rows.write(result.rows):
            await self.dead_letters(self.rejected_letter(refused))
        self.on_stored()
        self.faults.reached("rows_stored")
        await self.messages(result.messages)
        for store_name, keys in result.changed.items():
            if keys:
                store = stores[store_name]
                await self.changelog(store_name, [(k, p, store.get(k)) for k, p in keys.items()])
        self.faults.reached("changelog_acked")


def rejected_row_letter(refused: Rejected, raw_topic: str | None = None, raw_key: str = "") -> DeadLetter:
    """The dead letter of a refused row. A raw event row (``raw_topic``: the input it keeps) gives back the
    event as it came (topic, partition, offset, key, value); any other row is kept as JSON, under
    ``clickhouse:<table>``."""
    reason = f"ClickHouse refused the row for table {refused.table}: {refused.error}"
    row = refused.row
    if raw_topic is not None and {"source_partition", "source_offset", "payload"} <= row.keys():
        key = str(row.get(raw_key, "")).encode() if raw_key else None
        return DeadLetter(Record(raw_topic, int(row["source_partition"]), int(row["source_offset"]), key,
                                 str(row["payload"]).encode()), reason)
    value = json.dumps(row, default=str).encode()
    return DeadLetter(Record(f"clickhouse:{refused.table}", -1, -1, None, value), reason)
