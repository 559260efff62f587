"""GX expectations of enumwatch's own, used by name in `expectations/*.json`.

Imported by `jobs/quality.py` only once GX itself is imported (GX loads lazily, see `preload`):
defining the class registers its snake-case name with GX, so suites can say
`"type": "expect_no_unexpected_rows"`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from great_expectations.expectations import UnexpectedRowsExpectation


class ExpectNoUnexpectedRows(UnexpectedRowsExpectation):
    """GX's UnexpectedRowsExpectation (the query must return no rows), judged on the row count alone.

    The original also fetches up to 200 of the query's rows (`unexpected_rows_query.table`), which
    runs the query a second time, only to show them in COMPLETE results. enumwatch never asks for
    those (a row can carry pseudonyms; the count is the verdict), and a cross-table check over a
    week of lookups is the most expensive step of a suite, so the query runs once.
    """

    metric_dependencies: ClassVar[tuple[str, ...]] = ("unexpected_rows_query.row_count",)

    def _validate(self, metrics: dict, runtime_configuration: dict | None = None, execution_engine: Any = None) -> dict:
        count = metrics["unexpected_rows_query.row_count"]
        return {"success": count == 0, "result": {"observed_value": count}}
