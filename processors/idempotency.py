"""Telling a redelivered job from a request the producer sent again.

Delivery is at-least-once, so a job can reach a provider worker twice: after
a worker crash (its offset was not committed) or after a router crash (the
request is routed again). Both carry the *same* source position, the
request's partition and offset, and are skipped once the (tenant, request_id)
is in the answer ledger. A producer re-sending a request_id is a new source position:
within the dedup window it gets the ledger's reply again without a provider
call, unless that reply was a failure, in which case the re-send is a retry.

Request_ids are chosen by producers, so they identify a job only together with
its tenant: an entry of another tenant is never the job's answer, whatever the
lookup that found it (its reply would hand one tenant another's answer).
"""

from datetime import datetime, timedelta
from typing import Literal

from schemas.answer import AnsweredRequest
from schemas.decision import DispatchJob

DuplicateAction = Literal["process", "skip", "resend"]


def duplicate_action(
    answered: AnsweredRequest | None, job: DispatchJob, now: datetime, window_s: float
) -> DuplicateAction:
    if answered is None or job.source is None or not same_job(answered, job):
        return "process"
    if job.source in answered.sources:
        return "skip"
    if now - answered.answered_at > timedelta(seconds=window_s):
        return "process"
    return "resend" if answered.reply.status == "ok" else "process"


def same_job(answered: AnsweredRequest, job: DispatchJob) -> bool:
    """Whether a ledger entry answers this job's (tenant, request_id)."""
    return answered.key == (job.request.tenant, job.request.request_id)
