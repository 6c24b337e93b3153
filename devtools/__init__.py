"""Development tools, kept apart from the runtime: the simulator, the local stack (Tansu + ClickHouse), the bench."""
