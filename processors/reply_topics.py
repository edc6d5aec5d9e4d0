"""Where a job's replies may go: the reply_to rule, checked before routing.

A tenant may name as ``reply_to`` the deployment's shared replies topic or a topic
matching one of its ``reply_topics`` patterns (default ``{namespace}.replies.{tenant}``),
and only one that already exists: the router never lets a produce create a topic.
Every other catalogue topic (dispatch, settlements, the budget changelog, ...) and
Kafka's own ``__`` topics are refused whatever the patterns say.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from schemas.config import SwitchyardConfig
from schemas.errors import ReplyToRefused


def _any_topic(name: str) -> bool:
    return True


@dataclass(frozen=True)
class ReplyTopics:
    """This deployment's topics as the rule needs them, resolved by the worker.

    ``exists`` says whether a topic is on the broker now (the worker lists topics,
    which creates none).
    """

    namespace: str
    default: str
    internal: frozenset[str] = frozenset()
    exists: Callable[[str], bool] = field(default=_any_topic)


def allowed_patterns(tenant: str, config: SwitchyardConfig, namespace: str) -> list[str]:
    """The tenant's reply topic patterns with ``{namespace}`` and ``{tenant}`` filled in."""
    spec = config.tenants.get(tenant)
    patterns = spec.reply_topics if spec is not None else []
    return [p.replace("{namespace}", namespace).replace("{tenant}", tenant) for p in patterns]


def reply_to_refusal(
    reply_to: str | None, tenant: str | None, config: SwitchyardConfig, topics: ReplyTopics
) -> ReplyToRefused | None:
    """Why ``tenant`` may not have replies sent to ``reply_to``; None if it may."""
    if reply_to is None or reply_to == topics.default:
        return None
    if reply_to in topics.internal or reply_to.startswith("__"):
        return ReplyToRefused(f"reply_to {reply_to!r} is an internal topic")
    patterns = allowed_patterns(tenant, config, topics.namespace) if tenant else []
    if not any(fnmatchcase(reply_to, p) for p in patterns):
        return ReplyToRefused(f"reply_to {reply_to!r} is not one of the tenant's reply topics")
    if not topics.exists(reply_to):
        return ReplyToRefused(f"reply_to {reply_to!r} does not exist (it is never created)")
    return None


def safe_reply_to(
    reply_to: str | None, tenant: str | None, config: SwitchyardConfig, topics: ReplyTopics
) -> str | None:
    """``reply_to`` if allowed, else None (the shared replies topic)."""
    return None if reply_to_refusal(reply_to, tenant, config, topics) else reply_to
