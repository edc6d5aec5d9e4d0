"""Versioned schema migrations for the telemetry database, applied in order, once.

Tables are ReplacingMergeTree keyed by (tenant, request_id[, attempt |
shadow_model | kind]): a telemetry message replayed after a crash writes the
same key again and the engine keeps one row. Read with ``FINAL`` (the
``decision_feedback`` view does) to see deduplicated rows before background
merges have run.

A migration is recorded only after all its statements ran, so each statement
must be safe to run again (``IF NOT EXISTS``, ``OR REPLACE``). Never edit an
applied migration: append the next version. Migrations 6 and up (the analysts'
model: re-keyed ``requests``, hourly rollups) are in ``sinks.telemetry_model``.
"""

from collections.abc import Callable
from typing import Any

from sinks.telemetry_model import MODEL_MIGRATIONS

# A statement (``{db}`` is the database) or a function of the client and the database.
Step = str | Callable[[Any, str], None]

MIGRATIONS: list[tuple[int, str, list[Step]]] = [
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
    (
        2,
        "route plans, shadow calls, feedback and the decision_feedback view",
        [
            # Defaults match schemas.telemetry.RequestRow, so v1 rows read as
            # "no cache, no plan, not predicted". IF NOT EXISTS: a migration cut
            # short (the version is recorded only after every statement) reruns.
            """
            ALTER TABLE {db}.requests
                ADD COLUMN IF NOT EXISTS cache LowCardinality(String) DEFAULT 'off',
                ADD COLUMN IF NOT EXISTS steps String DEFAULT '',
                ADD COLUMN IF NOT EXISTS quality_target Float64 DEFAULT 0,
                ADD COLUMN IF NOT EXISTS predicted_quality Float64 DEFAULT -1,
                ADD COLUMN IF NOT EXISTS router_version LowCardinality(String) DEFAULT '',
                ADD COLUMN IF NOT EXISTS shadow_model LowCardinality(String) DEFAULT ''
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.shadow (
                request_id String,
                tenant LowCardinality(String),
                task LowCardinality(String),
                primary_model LowCardinality(String),
                shadow_model LowCardinality(String),
                outcome LowCardinality(String),
                agrees Bool,
                latency_ms Float64,
                cost_usd Float64,
                output_tokens UInt32,
                finished_at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(finished_at)
            PARTITION BY toYYYYMM(finished_at)
            ORDER BY (tenant, request_id, shadow_model)
            """,
            # Not partitioned: a later judgement of the same kind replaces the
            # earlier one (version ``at``), and background merges only replace
            # rows within a partition.
            """
            CREATE TABLE IF NOT EXISTS {db}.feedback (
                request_id String,
                tenant LowCardinality(String),
                kind LowCardinality(String),
                value Float64,
                source LowCardinality(String),
                at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(at)
            ORDER BY (tenant, request_id, kind)
            """,
            # Each judgement with the decision it judges; requests without
            # feedback are absent (inner join). FINAL on both sides: one row per
            # request and one per (request, kind) even before merges.
            """
            CREATE OR REPLACE VIEW {db}.decision_feedback AS
            SELECT
                r.tenant AS tenant,
                r.request_id AS request_id,
                r.app AS app,
                r.task AS task,
                r.quality AS quality,
                r.quality_target AS quality_target,
                r.status AS status,
                r.strategy AS strategy,
                r.model AS model,
                r.provider AS provider,
                r.cache AS cache,
                r.input_tokens AS input_tokens,
                r.output_tokens AS output_tokens,
                r.cost_usd AS cost_usd,
                r.total_ms AS total_ms,
                r.predicted_quality AS predicted_quality,
                r.router_version AS router_version,
                r.finished_at AS finished_at,
                f.kind AS kind,
                f.value AS value,
                f.source AS source,
                f.at AS at
            FROM {db}.requests AS r FINAL
            INNER JOIN {db}.feedback AS f FINAL
                ON r.tenant = f.tenant AND r.request_id = f.request_id
            """,
        ],
    ),
    (
        3,
        "prompt and completion text, as each tenant's content_logging allows",
        [
            # Empty for every row a tenant logs with ``off`` (the default), and for v1-v2 rows.
            """
            ALTER TABLE {db}.requests
                ADD COLUMN IF NOT EXISTS content_logged LowCardinality(String) DEFAULT 'off',
                ADD COLUMN IF NOT EXISTS prompt String DEFAULT '',
                ADD COLUMN IF NOT EXISTS completion String DEFAULT ''
            """,
        ],
    ),
    (
        4,
        "config versions: which config routed each request",
        [
            """
            ALTER TABLE {db}.requests
                ADD COLUMN IF NOT EXISTS config_version LowCardinality(String) DEFAULT ''
            """,
            # A version applied twice is one row (ReplacingMergeTree on version).
            """
            CREATE TABLE IF NOT EXISTS {db}.configs (
                version String,
                applied_by String,
                applied_at DateTime64(3, 'UTC'),
                previous String,
                diff String,
                content String
            ) ENGINE = ReplacingMergeTree(applied_at)
            ORDER BY version
            """,
        ],
    ),
    (
        5,
        "audit trail: every governance action with its rule and config version",
        [
            # Keyed so a replayed event writes the same row again: one per (request, rule).
            """
            CREATE TABLE IF NOT EXISTS {db}.audit (
                request_id String,
                tenant LowCardinality(String),
                team LowCardinality(String),
                app LowCardinality(String),
                action LowCardinality(String),
                rule LowCardinality(String),
                detail String,
                config_version LowCardinality(String),
                at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(at)
            PARTITION BY toYYYYMM(at)
            ORDER BY (tenant, action, request_id, rule)
            """,
        ],
    ),
]
MIGRATIONS += MODEL_MIGRATIONS
