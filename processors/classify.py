"""Task classification: a keyword heuristic, cheap enough to run on every job.

A request's own ``task`` hint always wins; the heuristic only fills the gap.
"""

import re
from typing import Literal

import orjson

from schemas.messages import InferenceRequest

TaskSource = Literal["hint", "classifier", "default"]

# Ordered: the first rule that matches names the task.
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "code",
        re.compile(
            r"```|\bdef \w+\(|\bfunction\b|\bclass \w+|\bTraceback\b|\bstack trace\b|"
            r"\b(python|javascript|typescript|rust|golang|java|sql|regex|bash)\b|\bcompile|\bbug\b",
            re.I,
        ),
    ),
    (
        "math",
        re.compile(
            r"\b(solve|calculate|compute|equation|integral|derivative|how many|how much|percent)\b"
            r"|\d+\s*[-+*/^=]\s*\d+",
            re.I,
        ),
    ),
    ("summarization", re.compile(r"\b(summari[sz]e|summary|tl;?dr|key points)\b", re.I)),
    ("translation", re.compile(r"\btranslat(e|ion)\b|\binto (french|german|spanish)\b", re.I)),
    ("extraction", re.compile(r"\b(extract|parse|as json|fill in the fields)\b", re.I)),
    ("classification", re.compile(r"\b(classify|categori[sz]e|sentiment|label this)\b", re.I)),
    ("reasoning", re.compile(r"\b(why|explain|prove|step by step|reason|analy[sz]e)\b", re.I)),
)


def classify(request: InferenceRequest, default_task: str) -> tuple[str, TaskSource]:
    """Name the request's task and say where the name came from."""
    if request.task:
        return request.task, "hint"
    text = last_user_text(request)
    for task, pattern in _RULES:
        if pattern.search(text):
            return task, "classifier"
    return default_task, "default"


def raw_last_user_text(raw: bytes | None, limit: int = 4000) -> str | None:
    """``last_user_text`` read straight from a job's JSON, before it is validated: the
    router featurises a batch's prompts at once with it. None if it is not a job."""
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        return None
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    found = users[-1] if users else messages[-1]
    content = found.get("content") if isinstance(found, dict) else None
    if isinstance(content, str):
        return content[:limit]
    if isinstance(content, list):
        parts = (p for p in content if isinstance(p, dict) and p.get("type") == "text")
        return "\n".join(str(p.get("text", "")) for p in parts)[:limit]
    return "" if content is None else None


def last_user_text(request: InferenceRequest, limit: int = 4000) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return message.text()[:limit]
    return request.messages[-1].text()[:limit]
