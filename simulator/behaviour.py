"""What a fake model answers: pure decisions, no I/O and no clock.

``decide`` is a function of (settings, model, prompt, occurrence, elapsed
time, forced-down flag, rate-limiter verdict). Its random draws come from a
``random.Random`` seeded with a blake2b hash of (seed, model, content digest,
occurrence), so a rerun of the same request sequence against a fresh
simulator gives identical answers, while a *retry* of one request (next
occurrence) gets fresh draws and may succeed where the first attempt failed.

Token accounting (documented because tests and cost checks rely on it):
``prompt_tokens = total characters of all message texts // 4 + 1 per message``
and ``completion_tokens = max(1, len(text) // 4)``.
"""

import hashlib
import math
import random
import re
from dataclasses import dataclass
from typing import Literal

import orjson

from schemas.errors import UsageError
from schemas.simulator import SimulatorSettings

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 1
_WORD = re.compile(r"[A-Za-z0-9']+")
_FILLER = (
    "the", "answer", "is", "that", "we", "consider", "a", "simulated", "response",
    "about", "and", "so", "on", "carefully", "overall", "result", "in", "short",
)  # fmt: skip


@dataclass(frozen=True)
class Prompt:
    """What a decision needs from a chat request.

    ``texts`` holds each message's text (multi-part content joined, images
    skipped); ``digest`` identifies the request content (see ``content_hash``).
    """

    texts: tuple[str, ...]
    last_user: str
    digest: str
    max_tokens: int | None = None

    @property
    def prompt_tokens(self) -> int:
        chars = sum(len(t) for t in self.texts)
        return chars // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE * len(self.texts)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Completion:
    """A successful answer, delivered after ``latency_ms``."""

    latency_ms: float
    request_id: str
    text: str
    finish_reason: Literal["stop", "length"]
    usage: Usage


@dataclass(frozen=True)
class Failure:
    """An OpenAI-style error answer; ``retry_after_s`` is set only for 429."""

    latency_ms: float
    status: int
    error_type: str
    message: str
    code: str | None = None
    param: str | None = None
    retry_after_s: int | None = None


Outcome = Completion | Failure


class TokenBucket:
    """Admits ``rate`` requests per second with a burst of ``max(1, rate)``; starts full.

    The caller passes the current time on every call, so tests drive it with
    plain numbers instead of a real clock.
    """

    def __init__(self, rate: float, now: float) -> None:
        if rate <= 0:
            raise UsageError("rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.updated = now

    def take(self, now: float) -> float | None:
        """Take one token: ``None`` if admitted, else seconds until one is available."""
        if now > self.updated:  # a clock that steps back must not drain the bucket
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.rate


def content_hash(payload: object) -> str:
    """A stable hex digest of JSON-compatible request content (key order ignored)."""
    canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


def decide(
    settings: SimulatorSettings,
    model: str,
    prompt: Prompt,
    occurrence: int,
    elapsed_s: float,
    *,
    down: bool = False,
    throttled_s: float | None = None,
) -> Outcome:
    """The answer of ``model`` (which must be in ``settings.models``) to ``prompt``.

    ``occurrence`` counts earlier requests with the same model and digest;
    ``throttled_s`` is the rate limiter's wait when it refused the request.
    Checks run in order: outage or ``down`` (503), throttled (429), context
    window (400), random server error (500). Rejections are immediate (0 ms).
    """
    profile = settings.models[model]
    if down or profile.in_outage(elapsed_s):
        message = f"{model} is temporarily unavailable (simulated outage). Please retry later."
        return Failure(0.0, 503, "server_error", message, code="service_unavailable")
    if throttled_s is not None:
        return rate_limited(model, profile.rate_limit_rps, throttled_s)
    tokens = prompt.prompt_tokens
    if tokens > profile.context_window:
        message = (
            f"This model's maximum context length is {profile.context_window} tokens. "
            f"However, your messages resulted in {tokens} tokens. "
            "Please reduce the length of the messages."
        )
        return Failure(
            0.0, 400, "invalid_request_error", message,
            code="context_length_exceeded", param="messages",
        )  # fmt: skip
    request_id, rng = _draws(settings.seed, model, prompt.digest, occurrence)
    # Always draw latency, then the error coin, then the text: turning error_rate
    # up or down must not reshuffle the latencies of the requests that succeed.
    latency = profile.latency_ms * math.exp(profile.latency_sigma * rng.gauss(0.0, 1.0))
    latency *= settings.latency_scale
    if rng.random() < profile.error_rate:
        message = "The server had an error while processing your request. Sorry about that!"
        return Failure(latency, 500, "server_error", message)
    wanted = max(1, round(profile.output_tokens * rng.uniform(0.75, 1.25)))
    capped = prompt.max_tokens is not None and wanted > prompt.max_tokens
    budget = prompt.max_tokens if capped and prompt.max_tokens is not None else wanted
    text = _completion_text(model, prompt.last_user, budget * CHARS_PER_TOKEN, rng)
    usage = Usage(tokens, max(1, len(text) // CHARS_PER_TOKEN))
    return Completion(latency, request_id, text, "length" if capped else "stop", usage)


def rate_limited(model: str, limit_rps: float | None, wait_s: float) -> Failure:
    """A 429 whose Retry-After is the wait rounded up to whole seconds, at least 1."""
    message = (
        f"Rate limit reached for {model} on requests per second (RPS): Limit {limit_rps}. "
        f"Please try again in {wait_s:.3f}s."
    )
    return Failure(
        0.0, 429, "requests", message,
        code="rate_limit_exceeded", retry_after_s=max(1, math.ceil(wait_s)),
    )  # fmt: skip


def _draws(seed: int, model: str, digest: str, occurrence: int) -> tuple[str, random.Random]:
    key = f"{seed}\x00{model}\x00{digest}\x00{occurrence}".encode()
    hashed = hashlib.blake2b(key, digest_size=16).digest()
    return f"chatcmpl-sim{hashed.hex()[:24]}", random.Random(int.from_bytes(hashed, "big"))


def _completion_text(model: str, last_user: str, max_chars: int, rng: random.Random) -> str:
    """``[model] `` and words picked from the prompt and a filler list, cut to ``max_chars``."""
    vocabulary = [w.lower() for w in _WORD.findall(last_user)[:64]] + list(_FILLER)
    parts = [f"[{model}]"]
    length = len(parts[0])
    while length < max_chars:
        word = rng.choice(vocabulary)
        parts.append(word)
        length += 1 + len(word)
    text = " ".join(parts)
    if length <= max_chars:
        return text
    # Too long: cut, then end on a full stop so the text reads like a sentence.
    return text[: max(1, max_chars - 1)].rstrip() + "."
