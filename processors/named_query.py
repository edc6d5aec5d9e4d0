"""Named queries: the shipped questions' SQL, its documented header, and its parameters.

Each query is a ``.sql`` file (``sinks/queries/``) that opens with comment lines::

    -- title: Cost per day by tenant, team, app and model
    -- answers: what each of them spent each day (reads requests_hourly)
    -- param days: UInt32 = 30 -- days back from as_of, today included
    -- param as_of: DateTime = now -- the window's end, UTC
    -- param premium_model: String = config -- the most expensive model of the config

and then uses each parameter as a ClickHouse query parameter (``{days:UInt32}``), so
values are bound by the engine, never spliced into the text. A default is a literal,
``now`` (the current UTC time), ``''`` (empty) or ``config``: filled from the loaded
config (``config_values``). ``{db:Identifier}`` is the telemetry database, always bound
by the command. A value given on the command line is text, converted by its type here.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from schemas.config import SwitchyardConfig
from schemas.errors import UsageError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_HEADER = re.compile(r"^--\s*(title|answers):\s*(.+)$")
_PARAM = re.compile(r"^--\s*param\s+(\w+):\s*(.+?)\s*=\s*(\S+)(?:\s+--\s*(.*))?$")
_PLACEHOLDER = re.compile(r"\{(\w+):([^{}]+)\}")
CONFIG = "config"
REQUIRED = "required"  # the default of an ad-hoc query's parameters: there is none


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # a ClickHouse type: String, UInt32, Float64, DateTime, Date, Array(...)
    default: str  # a literal, ``now``, ``''`` or ``config``
    doc: str = ""


@dataclass(frozen=True)
class NamedQuery:
    name: str
    title: str
    answers: str
    params: tuple[Param, ...]
    sql: str


def parse_query(name: str, text: str) -> NamedQuery:
    """A query file's header and body; UsageError for a header that does not document
    every parameter the SQL uses, with the same type."""
    fields: dict[str, str] = {}
    params: list[Param] = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        if found := _HEADER.match(line):
            fields[found.group(1)] = found.group(2).strip()
        elif found := _PARAM.match(line):
            params.append(Param(found[1], found[2], found[3], (found[4] or "").strip()))
    used = {m.group(1): m.group(2).strip() for m in _PLACEHOLDER.finditer(text)}
    used.pop("db", None)
    declared = {p.name: p.type for p in params}
    if used != declared or "title" not in fields:
        raise UsageError(
            f"query {name}: its header must give a title and declare exactly the "
            f"parameters it uses ({used}, declared {declared})"
        )
    return NamedQuery(name, fields["title"], fields.get("answers", ""), tuple(params), text)


def adhoc_query(sql: str) -> NamedQuery:
    """A typed-in query: every ``{name:Type}`` placeholder is a parameter with no default."""
    params = {m.group(1): m.group(2).strip() for m in _PLACEHOLDER.finditer(sql)}
    return NamedQuery("query", "", "", tuple(Param(n, t, REQUIRED) for n, t in params.items()), sql)


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """``k=v`` strings from ``--param`` as a dict; UsageError for one without ``=``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {pair!r}: expected NAME=VALUE")
        out[key.strip()] = value
    return out


def bind(
    query: NamedQuery, given: Mapping[str, str], config: SwitchyardConfig | None, now: datetime
) -> dict[str, Any]:
    """Every parameter's value: given as text (converted by its type), else its default;
    UsageError for an unknown name or a value of the wrong form."""
    known = {p.name: p for p in query.params}
    unknown = sorted(set(given) - set(known))
    if unknown:
        names = ", ".join(known) or "none"
        raise UsageError(f"{query.name} has no parameter {', '.join(unknown)} (it takes {names})")
    values = {name: convert(known[name], text) for name, text in given.items()}
    needs_config = [p.name for p in query.params if p.name not in values and p.default == CONFIG]
    if needs_config and config is None:
        raise UsageError(f"{query.name} takes {', '.join(needs_config)} from a config: none given")
    filled = config_values(config, values) if config is not None and needs_config else {}
    for param in query.params:
        if param.name in values:
            continue
        if param.default == REQUIRED:
            raise UsageError(f"{query.name} needs --param {param.name}=VALUE ({param.type})")
        if param.default == CONFIG:
            values[param.name] = filled[param.name]
        elif param.default == "now":
            values[param.name] = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        else:
            values[param.name] = convert(param, param.default.strip("'"))
    return values


def convert(param: Param, text: str) -> Any:
    """A parameter's text as the value its type takes (lists comma-separated)."""
    kind = param.type
    try:
        if kind.startswith("Array("):
            inner = Param(param.name, kind[6:-1], "")
            return [convert(inner, part.strip()) for part in text.split(",") if part.strip()]
        if kind.startswith(("UInt", "Int")):
            return int(text)
        if kind.startswith("Float"):
            return float(text)
        if kind == "Date":
            return date.fromisoformat(text).isoformat()
        if kind.startswith("DateTime"):
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is not None:
                moment = moment.astimezone(UTC)
            return moment.strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise UsageError(f"--param {param.name}={text!r}: not a {kind}") from None
    return text


def config_values(config: SwitchyardConfig, given: Mapping[str, Any]) -> dict[str, Any]:
    """What the questions take from the config: tenants' budgets, and the premium model
    (the most expensive, unless ``premium_model`` is given) with its prices."""
    budgeted = {t: s for t, s in config.tenants.items() if s.budget_usd is not None}
    premium = (
        given.get("premium_model")
        or max(config.models, key=lambda m: (m.price_out_per_mtok, m.price_in_per_mtok)).name
    )
    spec = config.model(premium)
    if spec is None:
        raise UsageError(f"premium_model {premium!r} is not a model of the config")
    return {
        "budget_tenants": list(budgeted),
        "budget_usd": [s.budget_usd for s in budgeted.values()],
        "budget_periods": [s.budget_period for s in budgeted.values()],
        "premium_model": premium,
        "premium_in_per_mtok": spec.price_in_per_mtok,
        "premium_out_per_mtok": spec.price_out_per_mtok,
    }
