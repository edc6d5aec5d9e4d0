"""What a telemetry read may do: one read-only statement, in a read-only session, bounded.

Two layers, both applied to every read (``switchyard query``, the commands, the
telemetry worker's query service), so neither has to be perfect alone:

- the session: a client of its own (never the writer's: chdb keeps settings per
  connection handle, and a read-only handle cannot be turned back) opened with
  ``READ_ONLY_SETTINGS``, ``readonly=1`` last, after which the engine refuses
  writes, ``SET`` and ``SETTINGS`` clauses, and most table functions; a query
  stops after ``max_execution_time`` seconds or ``max_result_rows`` rows.
- the text (``check_read_only``): the engine still serves ``INTO OUTFILE``,
  the scalar ``file()`` (which reads any file the process can, environment
  included), ``merge()`` and the ``system`` tables under ``readonly=1``, so
  those are refused before the query runs, with the rest of the table
  functions, the settings functions, the sleep functions and comments or
  quoting tricks that could hide any of it.
"""

import re
from typing import Any

from schemas.errors import QueryRejected

MAX_EXECUTION_S = 10
MAX_RESULT_ROWS = 1_000_000
MAX_RESULT_BYTES = 256 * 1024 * 1024
MAX_MEMORY_BYTES = 2 * 1024 * 1024 * 1024

# Order matters: once readonly is 1 no other setting of the session can change.
READ_ONLY_SETTINGS: dict[str, Any] = {
    "max_execution_time": MAX_EXECUTION_S,
    "max_result_rows": MAX_RESULT_ROWS,
    "max_result_bytes": MAX_RESULT_BYTES,
    "result_overflow_mode": "throw",
    # The result limits are best effort (a query without a table, arrayJoin over a
    # range, is not counted): time and memory bound every query.
    "max_memory_usage": MAX_MEMORY_BYTES,
    "readonly": 1,
}

_STATEMENTS = re.compile(
    r"^\s*(select|with|describe|desc|exists|explain"
    r"|show\s+(tables|databases|columns|create\s+table))\b"
)
# Every table function of the engine (tests compare this with system.table_functions),
# several of which are also scalar functions that read files or settings.
TABLE_FUNCTIONS = frozenset(
    """
    arrowflight arrowstream azureblobstorage azureblobstoragecluster bigquery cluster
    clusterallreplicas cosn deltalake deltalakeazure deltalakeazurecluster
    deltalakecluster deltalakelocal deltalakes3 deltalakes3cluster dictionary eval
    executable file filecluster filesystem format fuzzjson fuzzquery gcs generate_series
    generaterandom generateseries hdfs hdfscluster hudi hudicluster hudis3 iceberg
    iceberg_cluster icebergazure icebergazurecluster icebergcluster iceberghdfs
    iceberghdfscluster iceberglocal iceberglocalcluster icebergs3 icebergs3cluster input
    jdbc loop merge mergetreeanalyzeindexes mergetreeanalyzeindexesuuid
    mergetreecodecblockcounts mergetreeindex mergetreeprojection mergetreetextindex
    mongodb mysql null numbers numbers_mt odbc oss paimon paimonazure paimonazurecluster
    paimoncluster paimonhdfs paimonhdfscluster paimonlocal paimons3 paimons3cluster
    postgresql primes prometheusquery prometheusqueryrange python redis remote
    remotesecure s3 s3cluster sqlite sqlstandardvalues timeseriesdata
    timeseriesmetricfamilies timeseriesmetrics timeseriessamples timeseriesselector
    timeseriestags url urlcluster values view viewexplain viewifpermitted ytsaurus zeros
    zeros_mt
    """.split()
)
# Scalar functions that read files, settings or the host, or only hold a query open.
SCALAR_FUNCTIONS = frozenset(
    """
    catboostevaluate getclienthttpheader getmacro getmergetreesetting getserversetting
    getsetting getsettingordefault getosKernelversion sleep sleepeachrow
    filesystemavailable filesystemcapacity filesystemunreserved
    """.lower().split()
)
# The system tables a telemetry reader may look at: the catalogue, nothing of settings,
# environment, processes or logs.
SYSTEM_TABLES = frozenset({"tables", "columns", "databases"})

_TOKENS = re.compile(
    r"""(?P<comment>--[^\n]*|/\*.*?\*/)
      | (?P<string>'(?:[^'\\]|\\.|'')*')
      | (?P<quoted>`(?:[^`\\]|\\.|``)*`|"(?:[^"\\]|\\.|"")*")
      | (?P<other>[^'"`/-]+|[/-])""",
    re.S | re.X,
)
_CALL = re.compile(r"\b([a-z_][a-z0-9_]*)\s*\(")
_SYSTEM = re.compile(r"\bsystem\s*\.\s*([a-z_][a-z0-9_]*)")


def normalise(sql: str) -> str:
    """``sql`` lower-cased with comments made spaces, strings made ``''`` and quoted names
    unquoted; raises QueryRejected for an unterminated string, name or comment."""
    parts: list[str] = []
    position = 0
    for match in _TOKENS.finditer(sql):
        if match.start() != position:
            break
        position = match.end()
        if match.lastgroup == "comment":
            parts.append(" ")
        elif match.lastgroup == "string":
            parts.append("''")
        elif match.lastgroup == "quoted":
            parts.append(match.group()[1:-1])
        else:
            parts.append(match.group())
    if position != len(sql):
        raise QueryRejected("unterminated string, quoted name or comment")
    return "".join(parts).lower()


def check_read_only(sql: str) -> None:
    """Raise QueryRejected unless ``sql`` is one read-only statement that touches no file,
    URL, other server, setting or system table beyond the catalogue."""
    text = normalise(sql)
    if not _STATEMENTS.match(text) or ";" in text.strip().rstrip(";"):
        raise QueryRejected(
            "only a single SELECT, WITH, DESCRIBE, EXISTS, EXPLAIN or SHOW TABLES is served"
        )
    if re.search(r"\binto\s+outfile\b", text):
        raise QueryRejected("INTO OUTFILE is refused: reads only, no files written")
    for name in _CALL.findall(text):
        if name in TABLE_FUNCTIONS or name in SCALAR_FUNCTIONS or name.startswith("dictget"):
            raise QueryRejected(f"{name}() is refused: telemetry tables only")
    for table in _SYSTEM.findall(text):
        if table not in SYSTEM_TABLES:
            raise QueryRejected(f"system.{table} is refused: only system.tables/columns/databases")
    if re.search(r"\{\s*\w+\s*:\s*identifier\s*\}", text):
        # A bound name could be a system table the text never shows.
        raise QueryRejected("Identifier parameters are refused: name tables in the text")
    if re.search(r"\bsettings\b", text) or "#" in text or "$" in text:
        raise QueryRejected("SETTINGS clauses, # comments and $ quoting are refused")
