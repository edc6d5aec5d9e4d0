"""The command line's shape (help panels, usage errors) and its two kinds of output."""

import re

import pytest

from commands.app import spread_values
from commands.cli import main
from commands.console import Column, print_table
from commands.progress import Progress

PANELS = {
    "Run": ["up", "demo", "worker", "simulate", "broker", "kafka"],
    "Send": ["send"],
    "Inspect": ["topics", "query", "metrics", "report", "drift", "budget", "config", "schema"],
    "Operate": ["bench", "chaos", "whatif", "feedback", "dlq"],
    "Router": ["router"],
}
SUBCOMMANDS = {
    "dlq": ["list", "replay"],
    "router": ["train", "eval", "crossval", "predict"],
    "kafka": ["start", "stop", "status"],
}


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main([*argv, "--help"]) == 0
    return capsys.readouterr().out


def test_help_groups_every_command_in_five_panels(capsys: pytest.CaptureFixture[str]) -> None:
    out = _help([], capsys)
    titles = re.findall(r"^╭─ (\w+) ─", out, re.MULTILINE)
    assert titles == ["Options", *PANELS]
    panels = re.split(r"^╭─ ", out, flags=re.MULTILINE)[2:]
    for (title, commands), panel in zip(PANELS.items(), panels, strict=True):
        assert panel.startswith(title)
        listed = re.findall(r"^│ (\w+) ", panel, re.MULTILINE)
        assert listed == commands
    for group, commands in SUBCOMMANDS.items():
        listed = re.findall(r"^│ (\w+) ", _help([group], capsys), re.MULTILINE)
        assert listed == commands


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["feedback", "r-1", "--tenant", "acme", "--up", "--down"],
         "argument --down: not allowed with argument --up"),
        (["feedback", "r-1", "--tenant", "acme", "--success", "--score", "0.5"],
         "argument --score: not allowed with argument --success"),
        (["feedback", "r-1", "--tenant", "acme"],
         "one of the arguments --up --down --success --failure --score is required"),
        (["router", "train", "--data", "a.jsonl", "--from-telemetry"],
         "argument --from-telemetry: not allowed with argument --data"),
        (["dlq", "replay", "--all", "--offset", "3"],
         "argument --all: not allowed with argument --offset"),
    ],
)  # fmt: skip
def test_exclusive_options_are_a_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["send", "hi", "--tenant", "acme", "--quality", "luxury"],
        ["worker", "janitor"],
        ["chaos", "earthquake"],
        ["topics", "delete"],
        ["dlq", "list", "--stage", "route"],
        ["router", "train", "--kind", "stars", "--from-telemetry"],
        ["send", "hi"],
        ["demo", "--requests", "many"],
        ["router", "eval", "--router", "r"],
    ],
)
def test_bad_choices_and_missing_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2


def test_data_takes_several_files() -> None:
    argv = ["--data", "a", "b", "--out", "o", "--data", "c", "--json"]
    assert spread_values(argv, ["--data"]) == [
        "--data", "a", "--data", "b", "--out", "o", "--data", "c", "--json",
    ]  # fmt: skip
    assert spread_values(["--data", "--json"], ["--data"]) == ["--data", "--json"]


COLUMNS = (Column("tenant", 8), Column("requests", right=True), Column("note"))
ROWS = [("acme", "12", "first"), ("globex", "3", "")]
TOTAL = [("*", "15", "")]


def test_tables_are_plain_lines_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(COLUMNS, ROWS, TOTAL, title="not shown")
    assert capsys.readouterr().out.splitlines() == [
        "tenant    requests  note",
        "acme            12  first",
        "globex           3",
        "-------------------------",
        "*               15",
    ]
    print_table(COLUMNS, ROWS, tsv=True)
    assert capsys.readouterr().out == "tenant\trequests\tnote\nacme\t12\tfirst\nglobex\t3\t\n"


@pytest.mark.parametrize("variable", ["TTY_COMPATIBLE", "FORCE_COLOR"])
def test_tables_are_rich_on_a_terminal(
    variable: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(variable, "1")
    monkeypatch.setenv("COLUMNS", "100")
    print_table(COLUMNS, ROWS, TOTAL, title="by tenant")
    out = capsys.readouterr().out
    assert "\x1b[" in out  # styled
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    lines = [line.strip() for line in plain.splitlines() if line.strip()]
    assert lines[0] == "by tenant"
    rules = [i for i, line in enumerate(lines) if set(line) == {"─"}]
    assert rules == [1, 3, 6, 8]  # top, under the header, before the total, bottom
    assert lines[2].split() == ["tenant", "requests", "note"]
    assert lines[4].split() == ["acme", "12", "first"]
    assert lines[7].split() == ["*", "15"]


def test_topics_list_is_a_rich_table_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("SWITCHYARD_NAMESPACE", raising=False)
    assert main(["topics", "list"]) == 0
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert "─" * 10 in out
    assert re.search(r"^\s+switchyard\.requests\s+4\s+delete\s+tenant\s", out, re.MULTILINE)


def test_progress_off_a_terminal_prints_plain_lines(capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress("replies", 3)
    for done in (0, 1, 2, 3, 3):
        progress.update(done, "ok")
    lines = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"replies: 0/3 \(0/s\) ok", lines[0])
    assert re.fullmatch(r"replies: 3/3 \(\d+/s\) ok", lines[-1])
    assert len(lines) == 2  # the first line, then nothing for 2 s but the last
