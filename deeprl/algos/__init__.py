"""The algorithms, one file each, by family (pg, offpolicy, tabular, planning, imitation).

Look them up by name with :data:`deeprl.registry.ALGORITHMS` (re-exported here)."""
from deeprl.registry import ALGORITHMS, FAMILIES, Registry

__all__ = ["ALGORITHMS", "FAMILIES", "Registry"]
