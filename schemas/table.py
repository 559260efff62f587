"""How a table is declared: columns with a Spark SQL type, nullability and a one-line meaning.

Jobs select exactly these columns in this order before writing (`Table.conform`), readers apply
`Table.spark_schema` when reading (so an empty table still has its columns), and `python -m schemas`
renders docs/tables.md from the same declarations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import types as T

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_PRIMITIVES = {
    "string": T.StringType(),
    "binary": T.BinaryType(),
    "boolean": T.BooleanType(),
    "int": T.IntegerType(),
    "bigint": T.LongType(),
    "double": T.DoubleType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
}


def _split_top(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    return parts + [text[start:].strip()]


def spark_type(ddl: str) -> T.DataType:
    """Parse the small DDL subset the schemas use (primitives, array<>, map<,>, struct<>) without a JVM."""
    ddl = ddl.strip()
    if ddl in _PRIMITIVES:
        return _PRIMITIVES[ddl]
    if ddl.startswith("array<") and ddl.endswith(">"):
        return T.ArrayType(spark_type(ddl[6:-1]))
    if ddl.startswith("map<") and ddl.endswith(">"):
        key, value = _split_top(ddl[4:-1])
        return T.MapType(spark_type(key), spark_type(value))
    if ddl.startswith("struct<") and ddl.endswith(">"):
        fields = [f.split(":", 1) for f in _split_top(ddl[7:-1])]
        return T.StructType([T.StructField(n.strip(), spark_type(t)) for n, t in fields])
    raise ValueError(f"unsupported column type {ddl!r}")


@dataclass(frozen=True)
class Col:
    """One column: name, Spark SQL type, whether it may be null, and what it means."""

    name: str
    type: str
    doc: str
    nullable: bool = True


@dataclass(frozen=True)
class Table:
    """A lake table: its columns, its partition columns and what one row is."""

    name: str
    doc: str
    columns: tuple[Col, ...]
    partition_by: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        """Column names in storage order."""
        return [c.name for c in self.columns]

    def spark_schema(self) -> T.StructType:
        """The Spark schema of the table, partition columns included."""
        return T.StructType([T.StructField(c.name, spark_type(c.type), c.nullable) for c in self.columns])

    def conform(self, df: DataFrame) -> DataFrame:
        """`df` with exactly this table's columns, in order, cast to their declared types.

        The cast takes the DDL text, which the JVM parses in one call: a DataType object costs a
        round trip through its JSON and the active session per column.
        """
        from pyspark.sql import functions as F

        return df.select(*[F.col(c.name).cast(c.type).alias(c.name) for c in self.columns])

    def markdown(self) -> str:
        """A Markdown table of the columns, for the README and docs."""
        rows = [f"| `{c.name}` | {c.type} | {'' if c.nullable else 'yes'} | {c.doc} |" for c in self.columns]
        head = ["| column | type | required | meaning |", "|---|---|---|---|"]
        return "\n".join(head + rows)
