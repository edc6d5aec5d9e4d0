"""Generic features of an answer to a question, for a learned answer verifier.

Each feature makes sense for any model's answer to any question with numbers in it; none
depends on one data set's constants or format beyond common final-answer markers (``####``,
``\\boxed``, "answer", "therefore"). ``ANSWER_FEATURES`` names them in vector order:

- ``ar_*``: the arithmetic steps (``processors.checks.arithmetic``): how many, how many do not
  compute (all, those without unit words, in annotations, in the prose);
- ``fa_*``: the final answer (first number after the last ``####``, else the last number):
  missing, equal to the last step's result or to any computed value, given in the prompt,
  not whole, negative, its magnitude;
- text shape: markers, lengths, lines, ``=`` signs, numbers in prompt and answer, the share of
  the prompt's numbers the answer never uses, hedging and algebra words;
- ``halluc``: operands that are neither in the prompt (as digits, number words or a
  percentage's fraction) nor a value computed by an earlier step.

Counts are log1p-scaled except the raw ``ar_steps``, ``ar_bad`` and ``n_prompt_nums``; every
value is a finite float. Only the first 20,000 characters of each text are read.
"""

import bisect
import math
import re
from collections.abc import Iterable, Iterator

from processors.checks.arithmetic import MAX_TEXT_CHARS, Step, arithmetic_steps
from processors.checks.expression import NUMBER_PATTERN, normalize_text

ANSWER_FEATURES: tuple[str, ...] = (
    "ar_steps",
    "ar_log_steps",
    "ar_bad",
    "ar_any_bad",
    "ar_frac_bad",
    "ar_any_bad_strict",
    "ar_bad_annot",
    "ar_bad_visible",
    "ar_no_steps",
    "fa_missing",
    "fa_eq_last_result",
    "fa_in_results",
    "fa_in_prompt",
    "fa_not_whole",
    "fa_negative",
    "fa_log_abs",
    "marker_hash",
    "marker_any",
    "log_len_ans",
    "log_len_prompt",
    "len_ratio",
    "n_lines",
    "n_eq",
    "n_prompt_nums",
    "frac_prompt_unused",
    "halluc",
    "hedge",
    "algebra",
    "n_ans_nums",
    "n_decimals_ans",
)

_NUMBER = re.compile(r"-?\$?(?:" + NUMBER_PATTERN + r")")
# Each number is matched once, "%" optional: "(number)\s?%" alone would retry every digit
# of a long digit run as a new start (quadratic on a 20,000-digit prompt).
_NUMBER_MAYBE_PERCENT = re.compile(r"(" + NUMBER_PATTERN + r")(\s?%)?")
_LOWER_WORD = re.compile(r"[a-z]+")
NUMBER_WORDS = {
    "zero": 0.0, "one": 1.0, "two": 2.0, "three": 3.0, "four": 4.0, "five": 5.0,
    "six": 6.0, "seven": 7.0, "eight": 8.0, "nine": 9.0, "ten": 10.0, "eleven": 11.0,
    "twelve": 12.0, "twenty": 20.0, "thirty": 30.0, "forty": 40.0, "fifty": 50.0,
    "hundred": 100.0, "thousand": 1000.0, "dozen": 12.0, "half": 0.5, "twice": 2.0,
    "double": 2.0, "triple": 3.0, "quarter": 0.25, "third": 1 / 3.0,
}  # fmt: skip
_HEDGE = re.compile(
    r"\b(however|but|wait|actually|approximately|approx|about|assume|assuming|not sure|"
    r"cannot|can't|unclear|ambiguous|might|perhaps|probably|estimate|round)\b",
    re.I,
)
_ALGEBRA = re.compile(r"\b(let|equation|solve|variable|substitut\w*|system)\b", re.I)
_MARKER = re.compile(r"####|\banswer\b|\\boxed|\btherefore\b|\bthus\b|\bso\b", re.I)
_SAME = 1e-6  # relative tolerance for "the same number"
_SAME_RESULT = 1e-4  # looser for a final answer against computed (maybe rounded) results


class _NumberPool:
    """Numbers kept sorted, so "is one within tolerance of x" is a bisection, not a scan."""

    def __init__(self, values: Iterable[float] = ()) -> None:
        self._sorted = sorted(values)

    def __iter__(self) -> Iterator[float]:
        return iter(self._sorted)

    def __len__(self) -> int:
        return len(self._sorted)

    def add(self, value: float) -> None:
        bisect.insort(self._sorted, value)

    def has_near(self, value: float, tolerance: float = _SAME) -> bool:
        """True if some member is within ``tolerance * max(1, |value|)`` of ``value``."""
        limit = tolerance * max(1.0, abs(value))
        index = bisect.bisect_left(self._sorted, value - limit)
        return index < len(self._sorted) and self._sorted[index] <= value + limit


def answer_features(prompt: str, answer: str) -> list[float]:
    """The features of ``answer`` to ``prompt``, in ``ANSWER_FEATURES`` order."""
    text = normalize_text(answer[:MAX_TEXT_CHARS])
    prompt_text = prompt[:MAX_TEXT_CHARS]
    steps = arithmetic_steps(text)
    before_marker = text.split("####", 1)[0]
    answer_numbers = _numbers(before_marker)
    given = _NumberPool(_prompt_numbers(prompt_text))
    final, has_marker = _final_answer(text, answer_numbers)
    features = {
        **_step_features(steps),
        **_final_answer_features(final, steps, given),
        **_text_features(prompt_text, text, answer_numbers, given),
        "marker_hash": float(has_marker),
        "halluc": math.log1p(_unexplained_operands(steps, given)),
    }
    return [float(features[name]) for name in ANSWER_FEATURES]


def _numbers(text: str) -> list[float]:
    """The finite numbers written in ``text`` (``$`` and thousands separators dropped)."""
    values = (float(token.replace("$", "").replace(",", "")) for token in _NUMBER.findall(text))
    return [value for value in values if math.isfinite(value)]


def _prompt_numbers(prompt: str) -> set[float]:
    """Numbers the prompt gives: as digits, as number words, and percentages as fractions."""
    given = {round(value, 6) for value in _numbers(prompt)}
    for word in _LOWER_WORD.findall(prompt.lower()):
        if word in NUMBER_WORDS:
            given.add(round(NUMBER_WORDS[word], 6))
    for number, percent_sign in _NUMBER_MAYBE_PERCENT.findall(prompt):
        if percent_sign:
            given.add(round(float(number.replace(",", "")) / 100, 6))
    return {value for value in given if math.isfinite(value)}


def _final_answer(text: str, answer_numbers: list[float]) -> tuple[float | None, bool]:
    """The first number after the last ``####`` (marked), else the text's last number."""
    if "####" not in text:
        return (answer_numbers[-1] if answer_numbers else None), False
    after_marker = _numbers(text.rsplit("####", 1)[1])
    if after_marker:
        return after_marker[0], True
    everywhere = _numbers(text)  # numbers between markers count too
    return (everywhere[-1] if everywhere else None), False


def _step_features(steps: list[Step]) -> dict[str, float]:
    count = len(steps)
    bad = [step for step in steps if not step.ok]
    return {
        "ar_steps": float(count),
        "ar_log_steps": math.log1p(count),
        "ar_bad": float(len(bad)),
        "ar_any_bad": float(bool(bad)),
        "ar_frac_bad": len(bad) / max(count, 1),
        "ar_any_bad_strict": float(any(not step.has_units for step in bad)),
        "ar_bad_annot": float(any(step.annotated for step in bad)),
        "ar_bad_visible": float(any(not step.annotated for step in bad)),
        "ar_no_steps": float(count == 0),
    }


def _final_answer_features(
    final: float | None, steps: list[Step], given: _NumberPool
) -> dict[str, float]:
    if final is None:
        return {
            "fa_missing": 1.0, "fa_eq_last_result": 0.0, "fa_in_results": 0.0,
            "fa_in_prompt": 0.0, "fa_not_whole": 0.0, "fa_negative": 0.0, "fa_log_abs": 0.0,
        }  # fmt: skip
    results = _NumberPool([step.right for step in steps] + [step.left for step in steps])
    last_result = _NumberPool([steps[-1].right] if steps else [])
    return {
        "fa_missing": 0.0,
        "fa_eq_last_result": float(last_result.has_near(final, _SAME_RESULT)),
        "fa_in_results": float(results.has_near(final, _SAME_RESULT)),
        "fa_in_prompt": float(given.has_near(final)),
        "fa_not_whole": float(not final.is_integer()),
        "fa_negative": float(final < 0),
        "fa_log_abs": math.log10(1 + abs(final)),
    }


def _text_features(
    prompt: str, text: str, answer_numbers: list[float], given: _NumberPool
) -> dict[str, float]:
    used = _NumberPool(answer_numbers)
    given_used = sum(1 for value in given if used.has_near(value))
    lines = sum(1 for line in text.split("\n") if line.strip())
    return {
        "marker_any": float(_MARKER.search(text) is not None),
        "log_len_ans": math.log1p(len(text)),
        "log_len_prompt": math.log1p(len(prompt)),
        "len_ratio": math.log1p(len(text)) - math.log1p(len(prompt)),
        "n_lines": math.log1p(lines),
        "n_eq": math.log1p(text.count("=")),
        "n_prompt_nums": float(len(given)),
        "frac_prompt_unused": 1 - given_used / max(len(given), 1),
        "hedge": math.log1p(len(_HEDGE.findall(text))),
        "algebra": math.log1p(len(_ALGEBRA.findall(text))),
        "n_ans_nums": math.log1p(len(answer_numbers)),
        "n_decimals_ans": math.log1p(sum(1 for value in answer_numbers if not value.is_integer())),
    }


def _unexplained_operands(steps: list[Step], given: _NumberPool) -> int:
    """Operands neither given in the prompt nor computed by an earlier step, prose steps
    first, then annotations (the prototype's order)."""
    seen = _NumberPool(given)
    unexplained = 0
    for step in [s for s in steps if not s.annotated] + [s for s in steps if s.annotated]:
        unexplained += sum(1 for operand in step.operands if not seen.has_near(operand))
        seen.add(round(step.right, 6))
        seen.add(round(step.left, 6))
    return unexplained
