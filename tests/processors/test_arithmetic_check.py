"""The arithmetic-step checker and the answer features built on it: pure, no fixtures."""

import math

import pytest

from processors.checks.answer_features import ANSWER_FEATURES, answer_features
from processors.checks.arithmetic import (
    MAX_STEPS,
    MAX_TEXT_CHARS,
    arithmetic_steps,
    check_arithmetic,
)
from processors.checks.expression import evaluate_arithmetic


def flags(text: str) -> list[bool]:
    return [step.ok for step in arithmetic_steps(text)]


# The research prototype's own cases, with the flags it gave (annotations first, then prose).
PROTOTYPE_CASES = [
    ("3 + 4 * 2 = 11", [True]),
    ("8/3 = 2.67", [True]),
    ("8/3 = 2.6", [True]),
    ("54 x 2 = <<54*2=108>>108 lines", [True, True]),
    ("0.40 * 9 * 1040 = $0.40 * 9 * 1040 = $<<0.40*9*1040=3760>>3760", [False, True, False]),
    ("400 + 0.6 * 400 = 400 + 240 = <<400+240=640>>640 apartments", [True, True, True]),
    ("6 miles / 2 hours = 3 miles per hour", [True]),
    ("12 miles - 6 miles = 6 miles", [True]),
    ("15 floors * 8 units/floor * 3/4 = 36 x 3/4 = 27 units.", [False, True]),
    ("x + 5 = 20", []),
    ("3x + 5 = 20", []),
    ("2 * x = 10", []),
    ("1 hour = 60 minutes", []),
    ("60% * 400 = 240", [True]),
    ("$1,200 + $300 = $1,500", [True]),
    ("25% of 80 = 20", []),
    ("20% + 30% = 50%", [True]),
    ("0.25 = 25%", []),
    ("Step 2: 10 - 3 = 7", [True]),
    ("10/3 = 3.33 hours", [True]),
    ("(3 + 4) * 2 = 14", [True]),
    ("He has 5 apples, so 3 + 4 = 8", [False]),
    ("1/3 * 1/2 = 1/6 of it", [True]),
    ("2a = 2 * 11 = 22", [True]),
    ("40 - 2y + 4y = 70", []),
    ("<<8*12+4=96+4=100>>", [True, True]),
    ("4\\*12 + 2 = 50", [True]),
    ("2x3 = 6", [True]),
]


@pytest.mark.parametrize(("text", "expected"), PROTOTYPE_CASES)
def test_the_prototype_cases_keep_their_verdicts(text: str, expected: list[bool]) -> None:
    assert flags(text) == expected


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("8/3 = 2.67", True),  # rounded
        ("8/3 = 2.7", True),
        ("8/3 = 2.66", True),  # truncated
        ("8/3 = 2.65", False),
        ("8/3 = 2.5", False),
        ("8/3 = 2.68", False),
        ("2/3 = 0.667", True),
        ("3 + 4 * 2 = 14", False),  # precedence: 4 * 2 first
        ("100 / 4 = 25.0", True),
        ("7 - 10 = -3", True),
        ("7 - 10 = 3", False),
    ],
)
def test_a_shown_value_may_be_rounded_or_truncated_to_its_decimals(text: str, ok: bool) -> None:
    assert flags(text) == [ok]


def test_a_chain_checks_each_equals_sign_allowing_rounded_intermediates() -> None:
    assert flags("2 * 3 + 4 = 6 + 4 = 10") == [True, True]
    assert flags("2 * 3 + 4 = 6 + 4 = 11") == [True, False]
    assert flags("2 * 3 + 4 = 7 + 4 = 11") == [False, True]
    assert flags("100 / 3 * 3 = 33.3 * 3 = 99.9") == [True, True]  # 1% for intermediates


def test_annotations_are_checked_and_come_before_the_prose() -> None:
    steps = arithmetic_steps("So 3 + 4 = 7 and 2 x 5 = <<2*5=11>>11 apples.")
    assert [(step.annotated, step.ok) for step in steps] == [
        (True, False),
        (False, True),
        (False, False),
    ]
    assert steps[0].text == "2*5=11"
    assert (steps[0].left, steps[0].right) == (10.0, 11.0)


def test_percentages_are_read_as_a_fraction_or_as_written() -> None:
    assert flags("60% * 400 = 240") == [True]
    assert flags("60% * 400 = 250") == [False]
    assert flags("20% + 30% = 50%") == [True]
    assert flags("20% + 30% = 60%") == [False]


def test_dollars_and_thousands_separators_are_numbers() -> None:
    steps = arithmetic_steps("$1,200 + $300 = $1,500")
    assert steps[0].operands == (1200.0, 300.0)
    assert flags("1,000 * 3 = 3,000") == [True]
    assert flags("1,000 * 3 = 3,100") == [False]


def test_unit_words_after_operands_are_allowed_and_reported() -> None:
    steps = arithmetic_steps("12 miles - 6 miles = 5 miles")
    assert [(step.ok, step.has_units) for step in steps] == [(False, True)]
    assert arithmetic_steps("12 - 6 = 6")[0].has_units is False
    assert flags("5 big red apples + 2 = 7") == []  # three words: not a unit


@pytest.mark.parametrize(
    "text",
    ["10 \u2212 4 = 6", "6 \u00d7 7 = 42", "42 \u00f7 6 = 7", "3 \\times 4 = 12", "2 ^ 3 = 8"],
)
def test_operator_signs_models_write(text: str) -> None:
    assert flags(text) == [True]


@pytest.mark.parametrize(
    "text",
    [
        "x + 5 = 20",
        "3x + 5 = 20",
        "3x - 5 * 2 = 10",
        "2 * x = 10",
        "y + 3 = 8",
        "5kg + 2 = 7",
        "2(3) = 6",
    ],
)
def test_algebra_and_variables_are_skipped_not_flagged(text: str) -> None:
    assert arithmetic_steps(text) == []


@pytest.mark.parametrize("text", ["1 hour = 60 minutes", "0.25 = 25%", "total = 12", "12 = 13"])
def test_a_number_restated_is_not_a_step(text: str) -> None:
    assert arithmetic_steps(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('false') = 0",
        "(1).__class__ = 1",
        "2 ^ 100 = 5",  # exponent above 10
        "9 ^ 9 ^ 9 = 1",  # exponent is not a constant
        "2 ^ -3 = 0.125",
        "1 / 0 = 5",
        "(0 - 8) ^ 0.5 = 2",  # complex
    ],
)
def test_text_that_is_not_safe_arithmetic_is_skipped(text: str) -> None:
    assert arithmetic_steps(text) == []


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os')",
        "().__class__",
        "'a' * 3",
        "[1, 2]",
        "abs(-1)",
        "2 ** 11",
        "2 ** (1 + 1)",
        "9 ** 9 ** 9",
        "(-8) ** 0.5",
        "1 / 0",
        "10.0 ** 300 * 10.0 ** 300",
        "True + 1",
        "1 if 1 else 2",
    ],
)
def test_the_evaluator_refuses_everything_outside_its_whitelist(expression: str) -> None:
    with pytest.raises(ValueError):
        evaluate_arithmetic(expression)


def test_the_evaluator_computes_with_precedence() -> None:
    assert evaluate_arithmetic("-(3 + 4) * 2 - 2 ** 10 / 4") == -270.0


def test_prose_is_split_into_sentences_and_clauses() -> None:
    assert flags("First 3 + 4 = 7. Then 5 + 5 = 11; last 2 * 2 = 4") == [True, False, True]


def test_a_step_quotes_the_equation_trimmed_to_80_characters() -> None:
    assert arithmetic_steps("Thus 8/3 = 2.9 hours.")[0].text == "8/3 = 2.9"
    long_sum = " + ".join(["1"] * 40) + " = 40"
    text = arithmetic_steps(long_sum)[0].text
    assert len(text) == 80
    assert text.startswith("\u2026") and text.endswith("+ 1 = 40")


def test_the_verdict_counts_steps_and_quotes_the_first_failure() -> None:
    failing = check_arithmetic("3 + 4 = 7\n8/3 = 2.9\n2 * 5 = 10\n10 - 1 = 8")
    assert (failing.passed, failing.steps, failing.failed) == (False, 4, 2)
    assert failing.detail == ("2 of 4 steps do not compute: 8/3 = 2.9 (left side gives 2.66667)")
    one = check_arithmetic("8/3 = 2.9, and 1 + 1 = 2")
    assert one.detail.startswith("1 of 2 steps does not compute: 8/3 = 2.9")
    assert check_arithmetic("3 + 4 = 7\n2 * 2 = 4").detail == "2 steps compute"
    assert check_arithmetic("3 + 4 = 7").detail == "1 step computes"
    empty = check_arithmetic("The answer is seven.")
    assert (empty.passed, empty.steps, empty.detail) == (True, 0, "no arithmetic steps")


def test_work_is_bounded_on_huge_inputs() -> None:
    assert len(arithmetic_steps("1 + 1 = 2\n" * 1000)) == MAX_STEPS
    assert len(arithmetic_steps("<<1+1=2>>" * 1000)) == MAX_STEPS
    assert arithmetic_steps("a" * MAX_TEXT_CHARS + " 2 + 2 = 5") == []
    assert arithmetic_steps("=" * 50_000) == []
    assert arithmetic_steps("1 + " * 10_000 + "1 = 10001") == []  # too long to judge


# --- answer features --------------------------------------------------------


def features(prompt: str, answer: str) -> dict[str, float]:
    values = answer_features(prompt, answer)
    assert len(values) == len(ANSWER_FEATURES)
    return dict(zip(ANSWER_FEATURES, values, strict=True))


@pytest.mark.parametrize(
    ("prompt", "answer"),
    [
        ("", ""),
        ("How many?", "I cannot tell."),
        ("9" * 400 + " apples", "9" * 400 + " + 1 = 2\n#### " + "9" * 400),
        ("Tom has 3 apples.", "3 * 2 = 6\n#### 6"),
        ("1e308?", "1e308 * 10 = 1e309 #### -0.5"),
    ],
)
def test_features_are_finite_floats_in_declared_order(prompt: str, answer: str) -> None:
    values = answer_features(prompt, answer)
    assert len(values) == len(ANSWER_FEATURES) == len(set(ANSWER_FEATURES))
    assert all(isinstance(value, float) and math.isfinite(value) for value in values)


def test_no_feature_depends_on_hand_picked_constants() -> None:
    assert not {"halluc_big", "halluc_small", "any_halluc_big"} & set(ANSWER_FEATURES)


def test_final_answer_features() -> None:
    marked = features("Split 5 pies among 2 kids.", "5 / 2 = 2.5\n#### 2.5")
    assert marked["fa_not_whole"] == 1.0
    assert marked["marker_hash"] == 1.0
    assert marked["fa_eq_last_result"] == 1.0
    assert marked["fa_in_prompt"] == 0.0
    whole = features("Add 3 and 4.", "3 + 4 = 7, so the total is 7 apples")
    assert (whole["fa_not_whole"], whole["marker_hash"], whole["fa_missing"]) == (0.0, 0.0, 0.0)
    assert features("Add 3 and 4.", "It is seven.")["fa_missing"] == 1.0
    assert features("Owe 3.", "#### -3")["fa_negative"] == 1.0


def test_arithmetic_features_see_a_wrong_step() -> None:
    wrong = features("Add 3 and 4.", "3 + 4 = 8\n#### 8")
    right = features("Add 3 and 4.", "3 + 4 = 7\n#### 7")
    assert (wrong["ar_any_bad"], wrong["ar_bad"], wrong["ar_frac_bad"]) == (1.0, 1.0, 1.0)
    assert (right["ar_any_bad"], right["ar_steps"], right["ar_no_steps"]) == (0.0, 1.0, 0.0)
    annotated = features("", "<<3+4=8>>8 and 1 + 1 = 2")
    assert (annotated["ar_bad_annot"], annotated["ar_bad_visible"]) == (1.0, 0.0)


def test_operands_from_nowhere_are_counted() -> None:
    prompt = "Tom has three apples and 4 pears."
    # 3 (a number word) and 4 are given, 7 was computed; 2 comes from nowhere
    assert features(prompt, "3 + 4 = 7 and 7 * 2 = 14")["halluc"] == math.log1p(1)
    assert features(prompt, "3 + 4 = 7 and 7 * 4 = 28")["halluc"] == 0.0
    assert features("It costs 50%.", "0.5 * 10 = 5")["halluc"] == math.log1p(1)  # 10 only


def test_prompt_numbers_the_answer_never_uses() -> None:
    used = features("Add 3 and 4.", "3 + 4 = 7")
    half = features("Add 3 and 4.", "3 + 3 = 6")
    assert (used["frac_prompt_unused"], half["frac_prompt_unused"]) == (0.0, 0.5)
    assert used["n_prompt_nums"] == 2.0
