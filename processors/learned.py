"""The ``learned`` strategy's public home for its importers outside routing.

The strategy lives with the others in ``processors.strategies.learned``;
``commands`` build a ``RoutingContext`` from it by this path.
"""

from processors.strategies.learned import Learned, QualityPredictor

__all__ = ["Learned", "QualityPredictor"]
