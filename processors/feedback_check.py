"""Feedback proves its tenant the way a job does, then is stamped when it arrived.

Feedback is signed like a job (``processors.authenticate``: the same ``sy-*``
headers over the record's exact bytes). A tenant with ``auth: signed`` accepts
only feedback signed with one of its keys; a signature of another tenant, or none,
is refused. Stored feedback is keyed by (tenant, request_id, kind) and joins its
decision on (tenant, request_id), so what a tenant reports can only ever judge its
own requests; feedback naming a request_id the tenant never sent is stored and
joins nothing.

Freshness is judged against the record's arrival (its broker timestamp, never
later than the wall clock), not against the worker's clock when it reads it: a
telemetry worker that restarts and reads an hour-old record again must keep it.
A replay of a signed record writes the same judgement again, which the table
replaces.
"""

from datetime import datetime

from pydantic import ValidationError

from processors.authenticate import Headers, SecretLookup, check_claim, verify
from schemas.config import SwitchyardConfig
from schemas.errors import InvalidRequest, Unauthenticated
from schemas.feedback import Feedback


def admit_feedback(
    raw: bytes | None,
    headers: Headers,
    config: SwitchyardConfig,
    secret_of: SecretLookup,
    arrived: datetime,
) -> Feedback:
    """The feedback in ``raw``, stamped (``Feedback.received``) at ``arrived``.

    Raises ``Unauthenticated`` (or a subclass) when it does not prove its tenant,
    and ``InvalidRequest`` when it is not feedback at all.
    """
    signer = verify(raw or b"", headers, config, secret_of, arrived)
    try:
        feedback = Feedback.model_validate_json(raw or b"")
    except ValidationError as exc:
        raise InvalidRequest(f"not feedback: {exc.error_count()} invalid field(s)") from None
    if feedback.tenant not in config.tenants:
        raise Unauthenticated("feedback for a tenant this deployment does not know")
    check_claim(signer, feedback.tenant, config)
    return feedback.received(arrived)
