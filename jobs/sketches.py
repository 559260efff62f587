"""Aggregate expressions that merge stored rows: unions of HLL sketches and of small exact sets.

Hours merge into days, days into 7-day windows, member days into campaign members, and an entity's
days into its totals, all the same way; these are the two merges they share.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F


def union_estimate(sketch: str) -> Column:
    """The distinct count of the union of a column of sketches (0 when there is none)."""
    return F.coalesce(F.hll_sketch_estimate(F.hll_union_agg(sketch, True)), F.lit(0))


def union_sets(col: str) -> Column:
    """The union of a column of arrays, each value once, sorted (as `value_set` keeps them)."""
    return F.sort_array(F.array_distinct(F.flatten(F.collect_list(col))))


def value_set(col: Column | str) -> Column:
    """The distinct non-null values of a column, sorted.

    Sorted so that the same rows give the same list whatever order Spark's tasks met them in: a
    sample sliced from it is the same in an incremental run and in a full recomputation, and two
    runs' tables compare as they are.
    """
    return F.sort_array(F.collect_set(col))
