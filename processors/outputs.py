"""What a hop sends, as data: the one return type of every per-hop decision.

A hop's pure function (``processors.router_hop``, ``processors.provider_hop``)
returns a list of ``Output``; the worker turns each into a Kafka record
(``streams.outputs``) and sends the list in one batch. Outputs name a role,
not a topic: the catalogue maps roles to this deployment's topic names.
"""

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

OutputKind = Literal[
    "reply",  # to the job's reply_to, else the default replies topic
    "answer",  # the answer ledger entry (sent with the reply, in one produce request)
    "telemetry",
    "settlement",
    "dispatch",  # a routed job for the provider workers
    "retry",  # a parked job, on the delay topic of ``retry_tier``
    "cache",
    "dead_letter",
    "pre_step",  # to a tenant's pre-step topic, as the producer wrote it
    "rekey",  # a job back to its own topic, on its tenant's home partition, as written
]


@dataclass(frozen=True)
class Output:
    """One record to send: its role, key and message (raw bytes only when forwarded as is).

    ``topic`` overrides the role's topic (a reply_to, a pre-step topic);
    ``partition`` overrides the producer's partitioner; ``headers`` says whether
    the job's Kafka headers travel with it (a ``rekey`` keeps its signature too);
    ``origin`` (a ``rekey``'s) is where the job was first read, as (partition, offset),
    sent sealed (``processors.origin``).
    """

    kind: OutputKind
    key: str | None
    message: BaseModel | bytes
    topic: str | None = None
    retry_tier: int = 0
    headers: bool = False
    partition: int | None = None
    origin: tuple[int, int] | None = None
