"""Does the arithmetic an answer shows compute? A deterministic check of each equation.

Every equation ``LHS = RHS`` in the text is found: in prose (split at line ends, sentence
ends, ``;`` and ``: ``), in chains ``a = b = c`` (each ``=`` is one step) and in calculator
annotations ``<<expr=value>>``. The left side's arithmetic is evaluated with operator
precedence (``processors.checks.expression``: an ``ast`` whitelist, never ``eval``) and
compared with the value shown on the right:

- a shown number may be rounded or truncated to the decimals it shows: ``8/3 = 2.67`` and
  ``8/3 = 2.6`` both pass, ``8/3 = 2.5`` fails; a shown fraction ``1/6`` counts as its value;
- a chained expression (``= 400 + 240 =``) may differ by 1% (rounded intermediate values);
- ``%`` is read both ways (``60% * 400 = 240`` and ``20% + 30% = 50%`` pass);
- equations without an operator on either side (``1 hour = 60 minutes``) are restatements,
  and anything not purely arithmetic (``3x + 5 = 20``, ``2 * x = 10``) is skipped, never flagged.

Steps from annotations come first, then those in the prose, each in text order: the order
the research prototype used, which the answer features keep. Work is bounded: only the
first 20,000 characters are read, at most 200 steps are kept and the left side of an
equation is searched within its last 100 tokens.
"""

import math
import re
from dataclasses import dataclass

from processors.checks.expression import (
    OPERATORS,
    ReadExpression,
    Token,
    normalize_text,
    read_expression,
    tokenize,
)

MAX_TEXT_CHARS = 20_000
MAX_STEPS = 200
MAX_LEFT_TOKENS = 100
MAX_STEP_TEXT = 80
CHAIN_TOLERANCE = 0.01
_ANNOTATION = re.compile(r"<<([^<>]*)>>")
_PROSE_BREAK = re.compile(r"\n|(?<=[^\d])\.\s|;|:\s")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Step:
    """One equation step and whether its left side computes to the value shown."""

    ok: bool
    left: float  # value computed from the left side
    right: float  # value shown on the right
    operands: tuple[float, ...]
    has_units: bool
    annotated: bool  # from a <<...>> annotation
    text: str  # the equation as written, trimmed to <= 80 chars (for a check's detail)


@dataclass(frozen=True)
class ArithmeticVerdict:
    """The answer's arithmetic in one line: passed unless some step does not compute."""

    passed: bool  # no step fails
    steps: int
    failed: int
    detail: str  # e.g. "4 steps compute" or "1 of 4 steps does not compute: 8 / 3 = 2.9"


@dataclass(frozen=True)
class _RightSide:
    values: tuple[float, ...]
    decimals: tuple[int, ...]  # places each value is shown to (unused for an expression)
    operators: int
    unit_words: int
    is_expression: bool  # the middle of a chain, compared with the chain's tolerance
    end: int  # where the part read ends in the segment


def arithmetic_steps(text: str) -> list[Step]:
    """Every arithmetic step in ``text``: annotations first, then the prose."""
    text = normalize_text(text[:MAX_TEXT_CHARS])
    steps: list[Step] = []
    for match in _ANNOTATION.finditer(text):
        if "=" in match.group(1):
            steps.extend(_chain_steps(match.group(1), True, MAX_STEPS - len(steps)))
    prose = _ANNOTATION.sub(" ", text)
    for piece in _PROSE_BREAK.split(prose):
        if len(steps) >= MAX_STEPS:
            break
        if "=" in piece:
            steps.extend(_chain_steps(piece, False, MAX_STEPS - len(steps)))
    return steps


def check_arithmetic(text: str) -> ArithmeticVerdict:
    """The verdict on ``text``'s arithmetic; the detail quotes the first failing step."""
    steps = arithmetic_steps(text)
    failing = [step for step in steps if not step.ok]
    total = len(steps)
    noun = "step" if total == 1 else "steps"
    if not steps:
        detail = "no arithmetic steps"
    elif not failing:
        detail = f"{total} {noun} {'computes' if total == 1 else 'compute'}"
    else:
        verb = "does" if len(failing) == 1 else "do"
        first = failing[0]
        detail = (
            f"{len(failing)} of {total} {noun} {verb} not compute: {first.text}"
            f" (left side gives {first.left:.6g})"
        )
    return ArithmeticVerdict(not failing, total, len(failing), detail)


def _chain_steps(equation: str, annotated: bool, room: int) -> list[Step]:
    """Steps of ``a = b = c``: one per ``=``, at most ``room``."""
    segments = equation.split("=")
    tokens = [tokenize(segment) for segment in segments]
    # a middle segment (``= b =``) is read whole twice: as a right side, then as a left side
    middles = [None, *(read_expression(part) for part in tokens[1:-1]), None]
    starts = [0]
    for segment in segments:
        starts.append(starts[-1] + len(segment) + 1)
    steps: list[Step] = []
    for index in range(len(segments) - 1):
        if len(steps) >= room:
            break
        left = _left_side(tokens[index], middles[index])
        if left is None:
            continue
        read, left_start = left
        right = _right_side(tokens[index + 1], middles[index + 1])
        if right is None or (read.operators == 0 and right.operators == 0):
            continue  # number = number: a unit conversion or restatement, not arithmetic
        if not all(math.isfinite(value) for value in right.values):
            continue
        written = equation[starts[index] + left_start : starts[index + 1] + right.end]
        steps.append(_step(read, right, annotated, written))
    return steps


def _step(read: ReadExpression, right: _RightSide, annotated: bool, written: str) -> Step:
    chained = right.is_expression
    ok = any(
        _chain_agrees(computed, shown) if chained else _shows(computed, shown, decimals)
        for computed in read.values
        for shown, decimals in zip(right.values, right.decimals, strict=True)
    )
    return Step(
        ok=ok,
        left=read.values[0],
        right=right.values[0],
        operands=read.operands,
        has_units=bool(read.unit_words or (chained and right.unit_words)),
        annotated=annotated,
        text=_trimmed(written),
    )


def _left_side(
    tokens: list[Token], whole: ReadExpression | None
) -> tuple[ReadExpression, int] | None:
    """The expression ending a segment and where it starts: the ``whole`` segment if it is
    the middle of a chain (``= b =``) and reads, else the longest readable tail."""
    if whole is not None:
        return whole, tokens[0].start
    for index in range(max(0, len(tokens) - MAX_LEFT_TOKENS), len(tokens)):
        if _may_start_expression(tokens, index):
            read = read_expression(tokens[index:])
            if read is not None:  # the leftmost start that reads is the whole left side
                return read, tokens[index].start
    return None


def _may_start_expression(tokens: list[Token], index: int) -> bool:
    """A number, ``(`` or minus not preceded by something that means we see only part of an
    expression (an operator, a number, a term such as ``2a``, a one-letter variable)."""
    kind, text = tokens[index].kind, tokens[index].text
    if kind not in ("num", "lp") and not (kind == "op" and OPERATORS.get(text) == "-"):
        return False
    if index == 0:
        return True
    before = tokens[index - 1]
    if before.kind in ("op", "lp", "num", "var"):
        return False
    if before.kind == "word" and len(before.text) == 1 and before.text.lower() not in "ai":
        return False
    # "1. 5 + 2": a number split at its point is part of something we cannot read
    return not (before.text == "." and index > 1 and tokens[index - 2].kind == "num")


def _right_side(tokens: list[Token], whole: ReadExpression | None) -> _RightSide | None:
    """The value shown right of ``=``: the ``whole`` segment if it is the middle of a chain
    and reads as an expression, else the leading number or simple fraction ``a/b``."""
    if whole is not None:
        places = (0,) * len(whole.values)
        return _RightSide(
            whole.values, places, whole.operators, whole.unit_words, True, tokens[-1].end
        )
    negative = bool(tokens) and tokens[0].kind == "op" and OPERATORS.get(tokens[0].text) == "-"
    first = 1 if negative else 0
    if first >= len(tokens) or tokens[first].kind != "num":
        return None
    shown = _shown_value(tokens, first)
    if shown is None:
        return None
    value, decimals, end, is_percent = shown
    if negative:
        value = -value
    if is_percent:  # "40%" read as 0.4 is shown to two more places
        return _RightSide((value, value / 100), (decimals, decimals + 2), 0, 0, False, end)
    return _RightSide((value,), (decimals,), 0, 0, False, end)


def _shown_value(tokens: list[Token], at: int) -> tuple[float, int, int, bool] | None:
    """Number (or simple fraction) at ``tokens[at]``: value, decimals shown, end, percent."""
    value, is_percent = tokens[at].value, tokens[at].percent
    plain = tokens[at].text.replace("%", "").replace("$", "").strip()
    decimals = len(plain.split(".")[1]) if "." in plain else 0
    end = tokens[at].end
    is_fraction = (
        not is_percent
        and at + 2 < len(tokens)
        and tokens[at + 1].kind == "op"
        and tokens[at + 1].text == "/"
        and tokens[at + 2].kind == "num"
        and "%" not in tokens[at + 2].text
    )
    if is_fraction:
        denominator = tokens[at + 2].value
        if denominator:
            value, decimals, end = value / denominator, 6, tokens[at + 2].end
            if at + 3 < len(tokens) and tokens[at + 3].kind in ("num", "op", "lp"):
                return None  # "1/2 + 3": an expression, not a shown value
    return value, decimals, end, is_percent


def _shows(computed: float, shown: float, decimals: int) -> bool:
    """``shown`` is ``computed`` rounded or truncated to ``decimals`` places (or equal to
    one part in a million)."""
    gap = abs(computed - shown)
    if gap <= 0.5 * 10**-decimals * (1 + 1e-9) + 1e-9:
        return True
    if gap < 10**-decimals - 1e-12 and abs(shown) <= abs(computed) + 1e-12:  # truncated
        return True
    return gap <= 1e-6 * max(1.0, abs(computed))


def _chain_agrees(computed: float, shown: float) -> bool:
    return abs(computed - shown) <= CHAIN_TOLERANCE * max(1.0, abs(computed))


def _trimmed(written: str) -> str:
    """One line of at most 80 characters; a long equation keeps its end (the shown value)."""
    line = _SPACES.sub(" ", written).strip()
    return line if len(line) <= MAX_STEP_TEXT else "\u2026" + line[-(MAX_STEP_TEXT - 1) :]
