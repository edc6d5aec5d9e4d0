"""All external writes: telemetry to ClickHouse, replies and side outputs to Kafka."""
