"""The turn store: SQLite window + archive, the budget, and the token estimate."""

from .tokens import TokenEstimator
from .turns import Eviction, SearchHit, Turn, TurnStore
from .window import Budget, RowCost, plan_eviction

__all__ = ["Budget", "Eviction", "RowCost", "SearchHit", "TokenEstimator", "Turn", "TurnStore",
           "plan_eviction"]
