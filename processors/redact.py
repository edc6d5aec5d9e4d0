"""Finding secrets and personal data in text, and replacing each with a typed placeholder.

``Redactor.redact("mail jo@example.com")`` gives ``"mail [EMAIL]"``. Detectors, in the
order they win an overlap:

- secrets of common shapes: private key blocks, provider API keys (OpenAI, Anthropic,
  AWS, GitHub, Slack, Google, Stripe), JWTs, bearer tokens, and the value of a
  ``password=`` / ``api_key:`` style assignment (the name is kept);
- payment card numbers: 13-19 digits, spaces or dashes allowed, that pass the Luhn check;
- IBANs: country code, check digits and 11-30 characters that pass the ISO 13616 mod-97
  check;
- e-mail addresses;
- phone numbers: international (``+`` and 8-15 digits) or North American shape;
- the deployment's own patterns from config, each with its own placeholder.

Hand-written rather than a library's: Presidio's analyzer, the obvious candidate,
depends on spaCy and by default loads a spaCy language model it must download; these
patterns need neither, and they run on every message that is logged. The detectors
are held to a corpus of planted values and near misses (``tests/processors/
test_redact.py``): every planted value found, no near miss touched.

``as_sent_to`` applies the same redaction to a prompt before it goes to an external
provider, for the data classes the config's ``redaction.before_external`` names.
"""

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from schemas.config import ModelSpec, SwitchyardConfig
from schemas.messages import ChatMessage, InferenceRequest

Check = Callable[[str], bool]


@dataclass(frozen=True)
class Finding:
    kind: str  # the placeholder's name: EMAIL, CARD, SECRET...
    start: int
    end: int


@dataclass(frozen=True)
class _Detector:
    kind: str
    pattern: re.Pattern[str]
    check: Check | None = None
    group: int = 0  # the part of the match that is redacted (an assignment keeps its name)


def luhn_ok(candidate: str) -> bool:
    """The Luhn check of a card number's digits (separators ignored)."""
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    """The ISO 13616 mod-97 check of an IBAN (spaces ignored)."""
    iban = candidate.replace(" ", "").upper()
    if not 15 <= len(iban) <= 34 or not iban.isalnum():
        return False
    moved = iban[4:] + iban[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


def _phone_ok(candidate: str) -> bool:
    return 8 <= sum(c.isdigit() for c in candidate) <= 15


# Names whose assigned value is a secret (the names themselves are not).
_SECRET_NAMES = r"password|passwd|pwd|secret|client[_-]?secret|api[_-]?key|access[_-]?key|token"  # noqa: S105

_BUILT_IN: tuple[_Detector, ...] = (
    _Detector(
        "PRIVATE_KEY",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    ),
    _Detector(
        "API_KEY",
        re.compile(
            r"\bsk-ant-[A-Za-z0-9_-]{20,}"  # Anthropic
            r"|\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,}"  # OpenAI
            r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key id
            r"|\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}"  # GitHub
            r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
            r"|\bAIza[0-9A-Za-z_-]{35}"  # Google
            r"|\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe secret and restricted keys
        ),
    ),
    _Detector("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    _Detector("SECRET", re.compile(r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]{16,}=*)"), group=1),
    _Detector(
        "SECRET",
        re.compile(rf"(?i)\b(?:{_SECRET_NAMES})\b[\"']?\s*[:=]\s*[\"']?([^\s\"',;]{{6,}})"),
        group=1,
    ),
    _Detector("CARD", re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\d-])"), luhn_ok),
    _Detector("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"), iban_ok),
    _Detector(
        "EMAIL",
        re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
    ),
    _Detector(
        "PHONE",
        re.compile(
            r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){2,5}(?!\w)"  # +44 20 7946 0958
            r"|(?<![\w(])\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\w)"  # (415) 555-0132
        ),
        _phone_ok,
    ),
)


def _spans(
    detector: _Detector, text: str, free: Callable[[int, int], bool]
) -> Iterator[tuple[int, int]]:
    """Where ``detector`` finds something in ``text`` that no earlier finding covers
    (``free``).

    A checked pattern (cards, IBANs, phones) matches greedily across spaces and dashes, so
    two values side by side ("4111 1111 1111 1111 3782 822463 10005") make one candidate
    that fails its check. Such a match is cut back at its separators, longest first, until
    a prefix passes; if none does, the search goes on from the match's next start, so the
    value after it is still found."""
    at = 0
    while (match := detector.pattern.search(text, at)) is not None:
        start, end = match.span(detector.group)
        if detector.check is None:
            if end > start and free(start, end):
                yield start, end
            at = max(match.end(), match.start() + 1)
            continue
        check = detector.check
        cut = next(
            (e for e in _cuts(text, start, end) if free(start, e) and check(text[start:e])), None
        )
        if cut is not None:
            yield start, cut
            at = cut
        else:
            at = match.start() + 1


def _cuts(text: str, start: int, end: int) -> Iterator[int]:
    """``end``, then every end of a prefix of ``text[start:end]`` just before a separator."""
    yield end
    for i in range(end - 1, start, -1):
        if text[i] in " -" and text[i - 1] not in " -":
            yield i


class Redactor:
    """The built-in detectors plus ``extra`` (placeholder name -> regex) from config."""

    def __init__(self, extra: Mapping[str, str] | None = None) -> None:
        own = tuple(_Detector(name.upper(), re.compile(rx)) for name, rx in (extra or {}).items())
        self.detectors = _BUILT_IN + own

    def find(self, text: str) -> list[Finding]:
        """What to replace, in text order, no two overlapping (the earlier detector wins)."""
        taken: list[Finding] = []

        def free(start: int, end: int) -> bool:
            return all(end <= f.start or start >= f.end for f in taken)

        for detector in self.detectors:
            for start, end in _spans(detector, text, free):
                taken.append(Finding(detector.kind, start, end))
        return sorted(taken, key=lambda f: f.start)

    def redact(self, text: str) -> str:
        """``text`` with each finding replaced by ``[KIND]``."""
        return self.redact_found(text)[0]

    def redact_found(self, text: str) -> tuple[str, list[str]]:
        """``text`` redacted, and the kinds it found (for the audit trail)."""
        out: list[str] = []
        at = 0
        findings = self.find(text)
        for finding in findings:
            out += [text[at : finding.start], f"[{finding.kind}]"]
            at = finding.end
        out.append(text[at:])
        return "".join(out), [f.kind for f in findings]


def redactor_for(config: SwitchyardConfig) -> Redactor:
    """The redactor for ``config``'s own patterns, compiled once per set of patterns."""
    return _compiled(tuple(sorted(config.redaction.patterns.items())))


@functools.lru_cache(maxsize=8)
def _compiled(patterns: tuple[tuple[str, str], ...]) -> Redactor:
    return Redactor(dict(patterns))


BUILT_IN = Redactor()  # for text no config governs: provider error messages


def as_sent_to(
    request: InferenceRequest, model: ModelSpec, config: SwitchyardConfig
) -> InferenceRequest:
    """The request as model ``model`` may see it: with its messages redacted when its data
    class is in ``redaction.before_external`` and the model's provider is not internal;
    otherwise ``request`` itself."""
    settings = config.redaction
    if not settings.before_external or model.provider in settings.internal_providers:
        return request
    if config.data_class_for(request.data_classification) not in settings.before_external:
        return request
    redactor = redactor_for(config)
    messages = [_redacted_message(m, redactor) for m in request.messages]
    return request.model_copy(update={"messages": messages})


def _redacted_message(message: ChatMessage, redactor: Redactor) -> ChatMessage:
    content = message.content
    if isinstance(content, str):
        return message.model_copy(update={"content": redactor.redact(content)})
    if not content:
        return message
    parts = [
        {**part, "text": redactor.redact(str(part.get("text", "")))}
        if part.get("type") == "text" else part
        for part in content
    ]  # fmt: skip
    return message.model_copy(update={"content": parts})
