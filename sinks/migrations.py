"""Versioned schema migrations for the telemetry database, applied in order, once.

Tables are ReplacingMergeTree keyed by (tenant, request_id[, attempt]): a
telemetry message replayed after a crash writes the same key again and the
engine keeps one row. Read with ``FINAL`` (or the ``*_v`` views) to see
deduplicated rows before background merges have run.
"""

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "requests and attempts",
        [
            """
            CREATE TABLE IF NOT EXISTS {db}.requests (
                request_id String,
                tenant LowCardinality(String),
                team LowCardinality(String),
                app LowCardinality(String),
                task LowCardinality(String),
                task_source LowCardinality(String),
                quality LowCardinality(String),
                data_classification LowCardinality(String),
                status LowCardinality(String),
                strategy LowCardinality(String),
                model LowCardinality(String),
                provider LowCardinality(String),
                region LowCardinality(String),
                attempts UInt16,
                input_tokens UInt32,
                output_tokens UInt32,
                cost_usd Float64,
                estimated_cost_usd Float64,
                queued_ms Float64,
                routing_ms Float64,
                provider_ms Float64,
                total_ms Float64,
                error_code LowCardinality(String),
                prompt_chars UInt32,
                explanation String,
                finished_at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(finished_at)
            PARTITION BY toYYYYMM(finished_at)
            ORDER BY (tenant, request_id)
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.attempts (
                request_id String,
                attempt UInt16,
                tenant LowCardinality(String),
                model LowCardinality(String),
                provider LowCardinality(String),
                outcome LowCardinality(String),
                error_code LowCardinality(String),
                latency_ms Float64,
                finished_at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(finished_at)
            PARTITION BY toYYYYMM(finished_at)
            ORDER BY (tenant, request_id, attempt)
            """,
        ],
    ),
]
