"""A tenant's spend in its budget period, and the sealed value the router's budget table
stores it in (``StoredBudget``, the budget changelog's records).

``processors.budget`` computes new snapshots; ``processors.budget_record`` seals them.
"""

from pydantic import BaseModel, Field


class ScopeSpend(BaseModel):
    """A team's or app's spend in its own budget period (``schemas.scoped_budgets``)."""

    period: str
    spent_usd: float = 0.0
    reserved_usd: float = 0.0

    @property
    def committed_usd(self) -> float:
        return self.spent_usd + self.reserved_usd


class BudgetSnapshot(BaseModel):
    """One tenant's spend in the current budget period.

    ``applied`` holds the last offset applied from each source partition, keyed
    ``"<topic>:<partition>"`` (requests, prepared requests, settlements): a tenant's
    messages may arrive on any partition of those topics, and offsets of different
    partitions say nothing about each other. The three ``*_offset`` fields are what
    snapshots held before, one offset per topic; they are read (the changelog keeps
    old records) and folded into ``applied`` by ``processors.budget``, never written.
    """

    period: str
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    requests: int = 0
    applied: dict[str, int] = Field(default_factory=dict)
    # Rate-limit cells (processors.rate_limit): "<scope>/<unit>" -> epoch seconds.
    rate_tat: dict[str, float] = Field(default_factory=dict)
    # Team and app budgets: "team:<name>" or "app:<name>" -> spend in that budget's period.
    scopes: dict[str, ScopeSpend] = Field(default_factory=dict)
    request_offset: int = -1
    settlement_offset: int = -1
    prepared_offset: int = -1

    @property
    def committed_usd(self) -> float:
        return self.spent_usd + self.reserved_usd


class StoredBudget(BaseModel):
    """A budget changelog record's value: the snapshot, its write count and its seal
    (``processors.budget_record``)."""

    version: int = Field(ge=1, description="grows by one with every write of the tenant's snapshot")
    snapshot: BudgetSnapshot
    seal: str = Field(
        description="hex HMAC-SHA256 with the cluster key (processors/budget_record.py)"
    )
