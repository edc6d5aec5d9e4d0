"""Arithmetic expressions written in prose: tokens, well-formedness, safe evaluation.

The arithmetic checker reads the left side of an equation such as ``$1,200 + 6 miles x 2``
with this module:

- ``tokenize`` splits text into numbers (with ``$``, thousands separators and ``%``),
  operators (``+ - * / ^``, ``x``, the multiplication, division, minus and en-dash signs),
  parentheses, words and any other character. A word glued to the number before it (``2a``,
  ``10kg``) is a variable or term, never a unit, so algebra is not mistaken for arithmetic.
- ``read_expression`` accepts a token run only if the whole run is one well-formed
  expression, allowing up to two unit words after each operand (``6 miles / 2 hours``).
  A percentage has two readings (``60%`` as 0.6 and as 60); both are evaluated.
- ``evaluate_arithmetic`` parses the built expression with ``ast`` and computes it by walking
  a whitelist of nodes (numbers, ``+ - * / **``, unary signs); text is never ``eval``-ed.
  A power needs a constant exponent of at most 10 and every number is a float, so no input
  can ask for a huge integer; overflow, division by zero, a complex or non-finite result
  refuse the expression (the caller skips it rather than flagging it).
"""

import ast
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

NUMBER_PATTERN = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
# Whitespace after a token is part of its match (fewer matches: the tokenizer is the hot
# loop); only whitespace at the very start matches the ``ws`` group.
_TOKEN = re.compile(
    r"(?:(?P<num>\$?\s?(?:" + NUMBER_PATTERN + r")\s?%?)"
    r"|(?P<op>[-+*/^\u00d7\u00f7\u2212\u2013])"
    r"|(?P<lp>\()|(?P<rp>\))"
    r"|(?P<word>[A-Za-z][A-Za-z']*(?:/[A-Za-z]+)?)"
    r"|(?P<ws>[ \t]+)"
    r"|(?P<other>.))[ \t]*",
    re.S,
)
_OPERAND_FOLLOWS = re.compile(r"\s*[\d(]")
OPERATORS = {
    "+": "+",
    "-": "-",
    "\u2212": "-",  # minus sign
    "\u2013": "-",  # en dash
    "*": "*",
    "\u00d7": "*",  # multiplication sign
    "x": "*",
    "X": "*",
    "/": "/",
    "\u00f7": "/",  # division sign
    "^": "**",
}
_LATEX_AND_SPACES = (
    ("\u2212", "-"),
    ("\u2009", " "),
    ("\u00a0", " "),
    ("\\*", "*"),
    ("\\times", "*"),
    ("\\div", "/"),
    ("\\$", "$"),
)
MAX_UNIT_WORDS = 2
# Longer runs are not judged: it bounds parsing work and the evaluator's recursion depth.
MAX_EXPRESSION_TOKENS = 120
MAX_EXPONENT = 10


def normalize_text(text: str) -> str:
    """Unicode minus and thin/no-break spaces to ASCII, LaTeX ``\\times``/``\\div``/``\\*``/``\\$``
    to plain operators, so one tokenizer reads every way models write arithmetic."""
    for written, plain in _LATEX_AND_SPACES:
        text = text.replace(written, plain)
    return text


class Token(NamedTuple):
    """One token: its kind (num, op, lp, rp, word, var, other), text and span in the input;
    a number also carries the value it shows (``$``, ``,`` and ``%`` dropped)."""

    kind: str
    text: str
    start: int
    end: int
    value: float = 0.0
    percent: bool = False


def tokenize(text: str) -> list[Token]:
    """Tokens of ``text`` without whitespace; a word glued to a number becomes ``var``
    (or ``op`` for ``2x3``, an ``x`` between two operands)."""
    tokens: list[Token] = []
    previous_end, previous_kind = -1, ""
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind == "ws":
            continue
        token_text = match.group(kind)
        start = match.start()
        # a number's text may end with the one space before a "%" that did not come
        end = start + len(token_text.rstrip()) if kind == "num" else match.end(kind)
        if kind == "word" and previous_kind == "num" and start == previous_end:
            is_times = token_text.lower() == "x" and _OPERAND_FOLLOWS.match(text, end)
            kind = "op" if is_times else "var"
        if kind == "num":
            tokens.append(Token(kind, token_text, start, end, *number_value(token_text)))
        else:
            tokens.append(Token(kind, token_text, start, end))
        previous_end, previous_kind = end, kind
    return tokens


def number_value(token_text: str) -> tuple[float, bool]:
    """The number a ``num`` token shows (``60%`` shows 60), and whether it is a percentage."""
    plain = token_text.replace("$", "").replace(",", "").strip()
    is_percent = plain.endswith("%")
    return float(plain.rstrip("%").strip()), is_percent


@dataclass(frozen=True)
class ReadExpression:
    """A well-formed expression: its value under each reading (percent as a fraction first,
    then percent as written if it has a percentage), operator count, operands as written and
    how many unit words followed its operands."""

    values: tuple[float, ...]
    operators: int
    operands: tuple[float, ...]
    unit_words: int


_AFTER_OPERAND = ("operand", "rp")


@dataclass(slots=True)
class _ExpressionBuilder:
    """Walks tokens once, writing the expression for both percentage readings."""

    as_fraction: list[str] = field(default_factory=list)
    as_written: list[str] = field(default_factory=list)
    operands: list[float] = field(default_factory=list)
    operators: int = 0
    unit_words: int = 0
    units_here: int = 0
    depth: int = 0
    previous: str = ""  # operand | op | lp | rp, empty at the start
    has_percent: bool = False

    def add(self, token: Token) -> bool:
        """Take one token; False if the run can no longer be one expression."""
        kind = token.kind
        if kind == "word" and token.text in ("x", "X") and self.previous in _AFTER_OPERAND:
            kind = "op"
        if kind == "num":
            return self._number(token.value, token.percent)
        if kind == "word":
            return self._unit_word()
        if kind == "op":
            return self._operator(OPERATORS.get(token.text))
        if kind == "lp" and self.previous not in _AFTER_OPERAND:
            self.depth += 1
            return self._write("(", "lp")
        if kind == "rp" and self.depth > 0 and self.previous in _AFTER_OPERAND:
            self.depth -= 1
            return self._write(")", "rp")
        return False

    def _write(self, both: str, previous: str) -> bool:
        self.as_fraction.append(both)
        self.as_written.append(both)
        self.previous = previous
        return True

    def _number(self, written: float, is_percent: bool) -> bool:
        if self.previous in _AFTER_OPERAND:
            return False
        fraction = written / 100.0 if is_percent else written
        self.as_fraction.append(repr(fraction))
        self.as_written.append(repr(written))
        self.operands.append(written)
        self.has_percent = self.has_percent or is_percent
        self.previous, self.units_here = "operand", 0
        return True

    def _unit_word(self) -> bool:
        if self.previous != "operand" or self.units_here >= MAX_UNIT_WORDS:
            return False
        self.units_here += 1
        self.unit_words += 1
        return True

    def _operator(self, python_operator: str | None) -> bool:
        if python_operator is None:
            return False
        if self.previous in _AFTER_OPERAND:
            self.operators += 1
        elif python_operator != "-":  # only a minus may be unary
            return False
        return self._write(python_operator, "op")

    def expressions(self) -> list[str] | None:
        """The expression text per reading, or None if the run ended mid-expression."""
        if self.depth != 0 or self.previous not in _AFTER_OPERAND:
            return None
        readings = [" ".join(self.as_fraction)]
        if self.has_percent:
            readings.append(" ".join(self.as_written))
        return readings


def read_expression(tokens: Sequence[Token]) -> ReadExpression | None:
    """The whole token run as one evaluated expression, or None if it is not one (or no
    reading of it evaluates)."""
    if not tokens or len(tokens) > MAX_EXPRESSION_TOKENS:
        return None
    builder = _ExpressionBuilder()
    for token in tokens:
        if not builder.add(token):
            return None
    readings = builder.expressions()
    if readings is None:
        return None
    values: list[float] = []
    for reading in readings:
        try:
            values.append(evaluate_arithmetic(reading))
        except ValueError:
            continue
    if not values:
        return None
    return ReadExpression(
        tuple(values), builder.operators, tuple(builder.operands), builder.unit_words
    )


_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


def evaluate_arithmetic(expression: str) -> float:
    """Value of an expression of numbers, ``+ - * / **``, unary signs and parentheses.

    Raises ValueError for anything else (names, calls, attributes, strings...), for a power
    whose exponent is not a constant of magnitude at most 10, and for a result that is not
    a finite real number.
    """
    try:
        tree = ast.parse(expression, mode="eval")
        value = _node_value(tree.body)
    except (SyntaxError, ZeroDivisionError, OverflowError, RecursionError, MemoryError) as error:
        raise ValueError(f"not computable: {type(error).__name__}") from error
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def _node_value(node: ast.expr) -> float:
    constant = _number_constant(node)
    if constant is not None:
        return constant
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _node_value(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        if isinstance(node.op, ast.Pow):
            _refuse_big_exponent(node.right)
        result: float | complex = _BINARY[type(node.op)](
            _node_value(node.left), _node_value(node.right)
        )
        if isinstance(result, complex):  # e.g. (-8) ** 0.5
            raise ValueError("complex result")
        return result
    raise ValueError(f"{type(node).__name__} is not arithmetic")


def _refuse_big_exponent(exponent: ast.expr) -> None:
    constant = _number_constant(exponent)
    if constant is None or abs(constant) > MAX_EXPONENT:
        raise ValueError("exponent must be a constant of at most 10")


def _number_constant(node: ast.expr) -> float | None:
    """The value of a literal int or float (not a bool, string or complex), else None."""
    if not isinstance(node, ast.Constant) or isinstance(node.value, bool):
        return None
    return float(node.value) if isinstance(node.value, int | float) else None
