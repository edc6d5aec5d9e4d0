"""The shipped questions: one ``NAME.sql`` file each in this folder (package data).

``switchyard query NAME`` runs one (``commands.query``); ``processors.named_query``
documents the file format. Dashboard questions read the hourly rollups
(``sinks.rollups``); drill-downs to single requests read the raw tables with ``FINAL``.
"""

from importlib import resources

from processors.named_query import NAME_PATTERN, NamedQuery, parse_query
from schemas.errors import UsageError


def query_names() -> list[str]:
    folder = resources.files(__name__)
    return sorted(
        entry.name.removesuffix(".sql") for entry in folder.iterdir() if entry.name.endswith(".sql")
    )


def load_query(name: str) -> NamedQuery:
    """The named query; UsageError naming the shipped ones for an unknown name."""
    if not NAME_PATTERN.match(name) or name not in query_names():
        raise UsageError(
            f"no shipped query {name!r} (switchyard query --list shows them: "
            f"{', '.join(query_names())})"
        )
    text = resources.files(__name__).joinpath(f"{name}.sql").read_text(encoding="utf-8")
    return parse_query(name, text)


def all_queries() -> list[NamedQuery]:
    return [load_query(name) for name in query_names()]
