"""Reading the YAML config, with errors that point at the line in the file."""

import os
import re
from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import ValidationError

from schemas.config import SwitchyardConfig
from schemas.errors import ConfigError, ConfigIssue

# ${VAR} or ${VAR:-default}: lets one file serve the embedded default and compose.
_ENV_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str) -> str:
    def sub(match: re.Match[str]) -> str:
        value = os.environ.get(match.group(1))
        if value is None:
            if match.group(2) is None:
                raise KeyError(match.group(1))
            return match.group(2)
        return value

    return _ENV_REF.sub(sub, text)


def load_config(path: str | Path) -> SwitchyardConfig:
    source = str(path)
    try:
        raw_text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [ConfigIssue("", None, f"cannot read: {exc.strerror}")]) from exc
    return parse_config(raw_text, source)


def parse_config(raw_text: str, source: str = "<config>") -> SwitchyardConfig:
    try:
        text = expand_env(raw_text)
    except KeyError as exc:
        issue = ConfigIssue("", None, f"environment variable {exc.args[0]} is not set")
        raise ConfigError(source, [issue]) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(source, [ConfigIssue("", line, f"not valid YAML: {exc}")]) from exc
    try:
        return SwitchyardConfig.model_validate(data)
    except ValidationError as exc:
        issues = [
            ConfigIssue(_dotted(err["loc"]), _line_of(node, err["loc"]), err["msg"])
            for err in exc.errors()
        ]
        raise ConfigError(source, issues) from exc


def _dotted(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """Walk the YAML node tree along a pydantic error location to find its line."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line
