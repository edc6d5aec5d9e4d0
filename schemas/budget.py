"""A tenant's spend in its budget period: the value of the router's budget table.

Stored in the budget changelog topic; ``processors.budget`` computes new ones.
"""

from pydantic import BaseModel


class BudgetSnapshot(BaseModel):
    """One tenant's spend in the current budget period."""

    period: str
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    requests: int = 0
    request_offset: int = -1
    settlement_offset: int = -1
    prepared_offset: int = -1  # requests back from a pre-step arrive on their own topic

    @property
    def committed_usd(self) -> float:
        return self.spent_usd + self.reserved_usd
