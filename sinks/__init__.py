"""ClickHouse sinks: versioned DDL migrations and the batched, retrying writer."""
