"""What redaction looks for beside its built-in detectors (``processors.redact``)."""

import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.messages import DataClass


class RedactionSettings(BaseModel):
    """The config's ``redaction`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    patterns: dict[str, str] = Field(
        default_factory=dict,
        description="placeholder name -> regular expression, e.g. employee_id: '\\bEMP-\\d{6}\\b' "
        "is replaced by [EMPLOYEE_ID]",
    )

    before_external: list[DataClass] = Field(
        default_factory=list,
        description="data classes whose prompts are redacted before they go to a model of an "
        "external provider (one not in internal_providers)",
    )
    internal_providers: list[str] = Field(
        default_factory=lambda: ["onprem"],
        description="providers that run inside the enterprise: prompts reach them whole",
    )

    @model_validator(mode="after")
    def _patterns_compile(self) -> "RedactionSettings":
        for name, pattern in self.patterns.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"redaction pattern name {name!r}: letters, digits and _ only")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"redaction pattern {name!r} is not a regex: {exc}") from None
        return self
