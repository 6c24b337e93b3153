"""Which ClickHouse write errors are worth retrying, and which are the rows' fault.

A retry heals what is outside the rows: the network, a server restarting, memory or merges under pressure,
a table not migrated yet. It can never heal a row ClickHouse refuses (a value out of its type's range, an
insert that spans too many partitions): retried, such a batch would block the pipeline for ever. Those
rows are isolated by splitting the batch (``sinks/clickhouse.py``) and dead-lettered with the error.

Unknown errors are retried: blocking is visible (sink-blocked metric, health panel, watchdog) and loses
nothing, while dropping a row on an error we did not foresee would lose data silently.
"""

from __future__ import annotations

import struct

from clickhouse_driver.errors import Error, ErrorCodes

#: Server error codes caused by the data inserted (the same rows fail again, on any server).
DATA_ERROR_CODES = frozenset({
    ErrorCodes.CANNOT_PARSE_TEXT,
    ErrorCodes.CANNOT_PARSE_INPUT_ASSERTION_FAILED,
    ErrorCodes.CANNOT_PARSE_DATE,
    ErrorCodes.CANNOT_PARSE_DATETIME,
    ErrorCodes.TYPE_MISMATCH,
    ErrorCodes.ILLEGAL_TYPE_OF_ARGUMENT,
    ErrorCodes.ARGUMENT_OUT_OF_BOUND,
    ErrorCodes.CANNOT_CONVERT_TYPE,
    ErrorCodes.VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE,
    ErrorCodes.INCORRECT_DATA,
    ErrorCodes.TOO_LARGE_STRING_SIZE,
    ErrorCodes.CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN,
})

#: Raised by the driver while encoding the rows, before anything reaches the server.
CLIENT_DATA_ERRORS = (struct.error, OverflowError, ValueError, TypeError, UnicodeError)


def is_data_error(error: BaseException) -> bool:
    """True when the rows themselves are refused (retrying cannot succeed)."""
    if isinstance(error, Error):  # the server's errors, and the driver's own with a server code (type mismatch)
        if error.code == ErrorCodes.TOO_MANY_PARTS:
            # "too many partitions for single INSERT block" is the rows' spread; "too many parts" alone is
            # merges falling behind (transient)
            return "partitions for single insert" in str(error).lower()
        return error.code in DATA_ERROR_CODES
    return isinstance(error, CLIENT_DATA_ERRORS)
