"""The collaborative pose and gesture network (Yang et al., ECCV 2020): the `collab` and
`collab_gesture` heads (head.py) and their blocks: multi-order streams (multi_order.py),
multi-scale relation (relation.py), TCN (tcn.py). Importing it registers the heads in HEADS."""

from .head import CollaborativeGestureHead, CollaborativeHead
from .multi_order import MultiOrder
from .relation import MultiScaleRelation
from .tcn import TCN

__all__ = ["TCN", "CollaborativeGestureHead", "CollaborativeHead", "MultiOrder",
           "MultiScaleRelation"]
