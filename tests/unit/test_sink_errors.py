"""Which write errors are the rows' fault (split and dead-letter) and which are retried: on the texts and
codes today's ClickHouse (chdb) and the driver really give."""

from __future__ import annotations

import struct

import chdb.session
import pytest
from clickhouse_driver.errors import ErrorCodes, NetworkError, ServerException, SocketTimeoutError, TypeMismatchError

from sinks.errors import is_data_error


def chdb_error(sql: str) -> ServerException:
    """The server's exception for ``sql`` as the native driver raises it (code + message)."""
    s = chdb.session.Session()
    s.query("CREATE DATABASE IF NOT EXISTS d")
    s.query("CREATE TABLE IF NOT EXISTS d.t (t DateTime, x UInt8) ENGINE = MergeTree PARTITION BY toYYYYMM(t) "
            "ORDER BY t")
    with pytest.raises(Exception) as caught:
        s.query(sql)
    text = str(caught.value)
    code = int(text.split("Code: ", 1)[1].split(".", 1)[0])
    return ServerException(text.split("DB::Exception: ", 1)[1], code)


def test_too_many_partitions_in_one_insert_is_the_rows_fault() -> None:
    values = ",".join(f"(toDateTime({1_600_000_000 - i * 31 * 86400}), 1)" for i in range(150))
    error = chdb_error(f"INSERT INTO d.t VALUES {values}")
    assert error.code == ErrorCodes.TOO_MANY_PARTS and is_data_error(error)


def test_too_many_parts_merges_behind_and_network_errors_are_retried() -> None:
    merges_behind = ServerException("Too many parts (300). Merges are processing significantly slower than inserts",
                                    ErrorCodes.TOO_MANY_PARTS)
    assert not is_data_error(merges_behind)
    assert not is_data_error(NetworkError("Connection refused"))
    assert not is_data_error(SocketTimeoutError("timed out"))
    assert not is_data_error(ConnectionRefusedError())
    assert not is_data_error(TimeoutError())
    assert not is_data_error(ServerException("Table vigie.x doesn't exist", ErrorCodes.UNKNOWN_TABLE))  # migrate


def test_values_the_driver_cannot_encode_are_the_rows_fault() -> None:
    assert is_data_error(TypeMismatchError("Column event_time: argument out of range"))  # its code: 53
    assert is_data_error(struct.error("argument out of range"))
    error = chdb_error("INSERT INTO d.t VALUES ('not a time', 1)")
    assert is_data_error(error), error
