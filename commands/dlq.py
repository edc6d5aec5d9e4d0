"""Reading the dead-letter topic and replaying its letters: ``switchyard dlq``.

``read_letters`` reads the topic from its start to the end it has when the
read begins, and stops there. The end comes from the high watermark of the
first fetch answer, not ListOffsets, which the embedded broker gets wrong
(streams/kafka/quirks.py, defect 1). ``replay_letters`` publishes each selected
letter's original ``payload`` to the requests topic, keyed by its tenant;
letters whose payload was truncated, redacted or kept as size and hash only (the
tenant's ``dead_letter_payload`` policy) are refused, since the original is not there.
"""

import asyncio
import contextlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Literal

import orjson
import typer
from pydantic import ValidationError

from commands.app import at_least, exclusive, new_app
from commands.console import Column, print_table, say, stdout_is_terminal
from commands.stack_control import current_config, require_bootstrap
from processors.authenticate import SigningKey, sign
from schemas.dead_letter import DeadLetter
from schemas.errors import NothingSelected
from sinks.kafka_out import KafkaPublisher, producer_for
from streams.kafka.reading import read_to_end
from streams.local.environment import Environment
from streams.tenant_keys import signing_keys
from streams.topics import TopicCatalogue

# A letter holds a payload of up to limits.max_message_bytes plus JSON escaping,
# so one record can be several times that limit; a fetch must fit the largest.
MAX_LETTER_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class StoredLetter:
    """A letter and its offset on the dead-letter topic (its one partition)."""

    offset: int
    letter: DeadLetter


@dataclass
class LetterRead:
    """What a read found: the matching letters, and offsets that were not letters."""

    letters: list[StoredLetter] = field(default_factory=list)
    unreadable: list[int] = field(default_factory=list)


Keep = Callable[[StoredLetter], bool]


def letter_filter(code: str | None = None, stage: str | None = None) -> Keep:
    """Accept letters with this error code and stage (None accepts any)."""

    def keep(stored: StoredLetter) -> bool:
        letter = stored.letter
        return (code is None or letter.error.code == code) and (
            stage is None or letter.stage == stage
        )

    return keep


async def read_letters(
    bootstrap: str,
    topic: str,
    keep: Keep | None = None,
    limit: int | None = None,
    timeout_s: float = 10.0,
) -> LetterRead:
    """Read ``topic`` from its start to its current end, keeping what ``keep`` accepts.

    ``keep`` defaults to every letter; offsets of records that are not letters
    go to ``unreadable``. Stops early once ``limit`` letters are kept. Raises
    TopicMissing if the topic does not exist (without creating it) and StackError
    if the broker sends nothing for ``timeout_s``.
    """
    found = LetterRead()
    keep = keep or letter_filter()
    records = read_to_end(bootstrap, topic, "dead-letter topic", MAX_LETTER_BYTES, timeout_s)
    async with contextlib.aclosing(records):
        async for record in records:
            _collect(found, record.offset, record.value, keep)
            if limit is not None and len(found.letters) >= limit:
                break
    return found


def _collect(found: LetterRead, offset: int, value: bytes | None, keep: Keep) -> None:
    try:
        stored = StoredLetter(offset, DeadLetter.model_validate_json(value or b""))
    except ValidationError:
        found.unreadable.append(offset)
        return
    if keep(stored):
        found.letters.append(stored)


# --- printing ----------------------------------------------------------------

LIST_COLUMNS = (
    Column("offset", 6, right=True),
    Column("dead_lettered_at", 25),
    Column("stage", 8),
    Column("code", 21),
    Column("request_id", 31),
    Column("tenant", 15),
    Column("bytes", 9, right=True),
)
REPLAY_COLUMNS = (
    Column("offset", right=True),
    Column("request_id"),
    Column("tenant"),
    Column("bytes", right=True),
)


def letter_row(stored: StoredLetter) -> tuple[str, ...]:
    """One row of ``dlq list``: the cells of LIST_COLUMNS, ``-`` where unknown."""
    letter = stored.letter
    return (
        str(stored.offset),
        letter.dead_lettered_at.isoformat(timespec="seconds"),
        letter.stage,
        letter.error.code,
        letter.request_id or "-",
        letter.tenant or "-",
        str(letter.payload_bytes),
    )


def letter_json(stored: StoredLetter) -> str:
    """The letter as one JSON object, with its ``offset`` first."""
    return orjson.dumps({"offset": stored.offset, **stored.letter.model_dump(mode="json")}).decode()


# --- replay ------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which letters to replay: by offsets, by request ids, by error code, or all."""

    offsets: tuple[int, ...] = ()
    request_ids: tuple[str, ...] = ()
    code: str | None = None
    all: bool = False

    def accepts(self, stored: StoredLetter) -> bool:
        letter = stored.letter
        return (
            self.all
            or stored.offset in self.offsets
            or (letter.request_id is not None and letter.request_id in self.request_ids)
            or (self.code is not None and letter.error.code == self.code)
        )

    def not_found(self, selected: list[StoredLetter]) -> list[str]:
        """Offsets and request ids asked for by name that no selected letter has."""
        offsets = {s.offset for s in selected}
        request_ids = {s.letter.request_id for s in selected}
        return [f"offset {o}" for o in self.offsets if o not in offsets] + [
            f"request_id {r}" for r in self.request_ids if r not in request_ids
        ]


@dataclass
class ReplayReport:
    """What ``replay_letters`` did (or, in a dry run, would do)."""

    topic: str
    dry_run: bool
    selected: list[StoredLetter]
    replayed: list[StoredLetter]
    refused: list[StoredLetter]
    not_found: list[str]

    @property
    def complete(self) -> bool:
        """True when every letter asked for was (or would be) replayed."""
        return not self.refused and not self.not_found


async def replay_letters(
    bootstrap: str,
    catalogue: TopicCatalogue,
    selection: Selection,
    dry_run: bool = False,
    keys: Mapping[str, SigningKey] | None = None,
) -> ReplayReport:
    """Publish the selected letters' payloads to the requests topic, keyed by tenant.

    A letter of a tenant in ``keys`` is signed with its key at the moment of the
    replay, as the router requires of a ``signed`` tenant; others go out unsigned.

    Truncated and hash-only letters are refused and not sent; a return means the broker
    acknowledged the rest, and a failed send raises. Raises LookupError when
    nothing matches the selection; a dry run sends nothing.
    """
    found = await read_letters(bootstrap, catalogue.dead_letter.name, selection.accepts)
    if not found.letters:
        raise NothingSelected(
            "no dead letter matches the selection; `switchyard dlq list` shows them"
        )
    report = ReplayReport(
        topic=catalogue.requests.name,
        dry_run=dry_run,
        selected=found.letters,
        replayed=[s for s in found.letters if s.letter.replayable],
        refused=[s for s in found.letters if not s.letter.replayable],
        not_found=selection.not_found(found.letters),
    )
    if not dry_run and report.replayed:
        await _publish(bootstrap, report.topic, report.replayed, keys or {})
    return report


async def _publish(
    bootstrap: str, topic: str, letters: list[StoredLetter], keys: Mapping[str, SigningKey]
) -> None:
    values = [s.letter.payload.encode() for s in letters]
    now = datetime.now(UTC)
    producer = producer_for(bootstrap, max(1_048_576, 2 * max(map(len, values))))
    await producer.start()
    try:
        # deliver waits for every acknowledgement, so it flushes and, unlike a bare
        # flush, raises if any send failed instead of reporting it as replayed.
        await KafkaPublisher(producer).deliver(
            *[
                (topic, s.letter.tenant or None, v, _signature(s.letter.tenant, v, keys, now))
                for s, v in zip(letters, values, strict=True)
            ]
        )
    finally:
        await producer.stop()


def _signature(
    tenant: str | None, value: bytes, keys: Mapping[str, SigningKey], now: datetime
) -> list[tuple[str, bytes]] | None:
    key = keys.get(tenant) if tenant is not None else None
    return sign(value, key, now) if key is not None else None


def print_report(report: ReplayReport) -> None:
    """Each replayed letter (a table on a terminal, a sentence each otherwise), then the summary."""
    verb = "would replay" if report.dry_run else "replayed"
    if stdout_is_terminal():
        rows = [(str(s.offset), *letter_row(s)[4:]) for s in report.replayed]
        print_table(REPLAY_COLUMNS, rows, title=f"{verb} to {report.topic}")
    else:
        for s in report.replayed:
            letter = s.letter
            print(
                f"{verb} offset {s.offset} (request_id {letter.request_id or '-'}, "
                f"tenant {letter.tenant or '-'}, {letter.payload_bytes} bytes) to {report.topic}"
            )
    print(
        f"selected {len(report.selected)}, {verb} {len(report.replayed)}, "
        f"refused {len(report.refused)}" + (" (dry run: nothing sent)" if report.dry_run else "")
    )


def format_problems(report: ReplayReport) -> list[str]:
    """Lines for stderr: refused letters and names that matched nothing."""
    lines = [
        f"refused offset {s.offset} (request_id {s.letter.request_id or '-'}): {_why_refused(s)}"
        for s in report.refused
    ]
    lines += [f"not found: {name}" for name in report.not_found]
    return lines


def _why_refused(stored: StoredLetter) -> str:
    letter = stored.letter
    if letter.payload_kept == "hash":
        return (
            f"only the size ({letter.payload_bytes} bytes) and SHA-256 of the payload were "
            "kept, by the tenant's dead_letter_payload policy (set it to full to replay)"
        )
    if letter.payload_kept == "redacted":
        return (
            "the payload was kept with its secrets and personal data replaced, by the "
            "tenant's dead_letter_payload policy (set it to full to replay)"
        )
    return (
        f"payload was truncated to {len(letter.payload.encode())} of "
        f"{letter.payload_bytes} bytes, the original is lost"
    )


# --- the `switchyard dlq` commands --------------------------------------------

app = new_app("List dead letters, or replay them to the requests topic.")


@app.command("list")
def list_letters(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per letter")] = False,
    code: Annotated[str | None, typer.Option(help="only letters with this error code")] = None,
    stage: Annotated[
        Literal["validate", "dispatch"] | None, typer.Option(help="only letters of this stage")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(metavar="N", help="print at most N letters (the oldest)")
    ] = None,
) -> int:
    """Print the dead letters, oldest first."""
    at_least("--limit", limit, 1)
    bootstrap, catalogue = _broker()
    keep = letter_filter(code, stage)
    found = asyncio.run(read_letters(bootstrap, catalogue.dead_letter.name, keep, limit))
    if found.unreadable:
        say(f"skipped records that are not dead letters at offsets {found.unreadable}")
    if as_json:
        for stored in found.letters:
            sys.stdout.write(letter_json(stored) + "\n")
    else:
        print_table(LIST_COLUMNS, [letter_row(stored) for stored in found.letters])
    return 0


@app.command("replay")
def replay(
    ctx: typer.Context,
    offsets: Annotated[
        list[int] | None, typer.Option("--offset", metavar="N", help="repeatable")
    ] = None,
    request_ids: Annotated[
        list[str] | None, typer.Option("--request-id", metavar="ID", help="repeatable")
    ] = None,
    code: Annotated[str | None, typer.Option(help="every letter with this error code")] = None,
    every: Annotated[bool, typer.Option("--all", help="every letter")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print what would be sent, send nothing")
    ] = False,
) -> int:
    """Publish letters' original payloads to requests."""
    given = {"--offset": offsets, "--request-id": request_ids, "--code": code, "--all": every}
    exclusive(ctx, given)
    bootstrap, catalogue = _broker()
    selection = Selection(tuple(offsets or ()), tuple(request_ids or ()), code, every)
    keys = signing_keys(current_config(Environment.from_env()))
    report = asyncio.run(replay_letters(bootstrap, catalogue, selection, dry_run, keys))
    for line in format_problems(report):
        say(line)
    print_report(report)
    return 0 if report.complete else 1


def _broker() -> tuple[str, TopicCatalogue]:
    env = Environment.from_env()
    return require_bootstrap(env), TopicCatalogue(env.namespace)
