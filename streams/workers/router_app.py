"""The router's faust app as configured (``faust_app``), its batch sizes, and the
``/budget/`` page: what ``streams.workers.router`` builds its agents on."""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faust

from schemas.access import ADMIN_TOKEN_ENV, AUTHORIZATION, token_matches
from schemas.config import SwitchyardConfig
from sinks.kafka_out import LINGER_MS
from streams.kafka.broker_profile import profile
from streams.kafka.consumers import HEARTBEAT_INTERVAL_MS, SESSION_TIMEOUT_MS
from streams.topics import ROUTING_PARTITIONS, TopicCatalogue, home_partition
from streams.workers.budget_table import BudgetBook

# Events decided per batch, and the longest a batch waits to fill: under load a batch
# fills from the fetches in hand; on an idle stack a job waits at most BATCH_WITHIN_S.
BATCH_MAX = 500
BATCH_WITHIN_S = 0.002


def faust_app(
    config: SwitchyardConfig,
    bootstrap: str,
    catalogue: TopicCatalogue,
    web_port: int,
    state_dir: Path,
    replication_factor: int,
) -> faust.App:
    return faust.App(
        catalogue.router_app_id,
        # faust takes several brokers as URLs separated by ';', not a comma list.
        broker=";".join(f"kafka://{server.strip()}" for server in bootstrap.split(",")),
        store="memory://",
        datadir=str(state_dir / "faust"),
        processing_guarantee="at_least_once",
        topic_partitions=ROUTING_PARTITIONS,
        topic_replication_factor=replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=0.5,
        producer_linger=LINGER_MS / 1000,
        producer_max_request_size=4 * config.limits.max_message_bytes,
        consumer_max_fetch_size=4 * config.limits.max_message_bytes,
        broker_max_poll_records=BATCH_MAX,
        stream_buffer_maxsize=2 * BATCH_MAX,
        web_enabled=True,
        # faust's /table/ and /router/ pages would show the budget table to anyone.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_bind="127.0.0.1",
        web_port=web_port,
        web_host="127.0.0.1",
        autodiscover=False,
        # Group timeouts per engine (broker_profile): the embedded broker makes a join
        # wait about half the rebalance timeout, and faust's 60 s would stall every start.
        broker_session_timeout=SESSION_TIMEOUT_MS / 1000,
        broker_heartbeat_interval=HEARTBEAT_INTERVAL_MS / 1000,
        broker_rebalance_timeout=profile(bootstrap).rebalance_timeout_ms / 1000,
    )


def owned_partitions(app: faust.App, catalogue: TopicCatalogue) -> Callable[[], set[int]]:
    """The routing partitions this router holds now (its active assignment)."""

    def owned() -> set[int]:
        actives = app.assignor.assigned_actives()
        return {tp.partition for tp in actives if tp.topic == catalogue.requests.name}

    return owned


def add_budget_page(app: faust.App, book: BudgetBook, owned: Callable[[], set[int]]) -> None:
    """``GET /budget/``: the snapshot of every tenant whose home partition this router
    holds, for ``Authorization: Bearer <token>`` with the token in
    ``SWITCHYARD_ADMIN_TOKEN`` when the router started (``schemas.access``); without that
    variable the page refuses everyone. faust's own table pages, which would show the
    same values to anyone, are off (``faust_app``).

    A partition taken away by a rebalance leaves its tenants' last snapshots in this
    router's memory (faust's memory store keeps them); they are no longer this router's
    to show, so the page leaves them out."""
    token = os.environ.get(ADMIN_TOKEN_ENV)

    @app.page("/budget/")
    async def budget_page(web: Any, request: Any) -> Any:
        if not token_matches(request.headers.get(AUTHORIZATION), token):
            return web.json({"error": f"Authorization: Bearer <{ADMIN_TOKEN_ENV}>"}, status=401)
        held = owned()
        snapshots = book.snapshots()
        return web.json({t: s for t, s in snapshots.items() if home_partition(t) in held})


__all__ = ["BATCH_MAX", "BATCH_WITHIN_S", "add_budget_page", "faust_app"]
