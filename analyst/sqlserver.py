"""The lake's tables by name for SQL clients: temporary views for `enumwatch sql`, and the Spark Thrift
(JDBC) server for beeline, DBeaver and Superset (`enumwatch serve-sql`).

Both read each table's current *version directory*, never the `lake/<table>` link: a query then sees
one consistent version even when a run publishes mid-query (old versions outlive a few publishes),
and the views are re-pointed when a table's link moves: before each statement at the prompt, and
every few seconds in the server.

The server is HiveThriftServer2 from the pyspark wheel, started inside the driver that pyspark
launches (`spark-submit` from the wheel's SPARK_HOME), so the master and memory come from settings.
Its Hive metastore is an embedded Derby database in a temporary directory outside the lake; the
tables are persistent views in it, so every JDBC session sees them by name and stays isolated.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from core.errors import UserError
from core.lake import Lake, parquet_files
from core.settings import Settings
from schemas import LAKE_TABLES

DEFAULT_PORT = 10000
DEFAULT_HOST = "127.0.0.1"


def table_versions(lake: Lake) -> dict[str, Path | None]:
    """Each table's current version directory (None before its first publish)."""
    return {name: lake.current(name) for name in LAKE_TABLES}


def _has_data(version: Path | None) -> bool:
    return version is not None and any(parquet_files(version))


def read_version(spark: SparkSession, table: str, version: Path | None) -> DataFrame:
    """One version of a table with its declared schema (empty, with its columns, when it has no files)."""
    schema = LAKE_TABLES[table].spark_schema()
    if not _has_data(version):
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).parquet(str(version))


def sync_temp_views(
    spark: SparkSession, lake: Lake, known: dict[str, Path | None] | None = None
) -> dict[str, Path | None]:
    """(Re)register a temporary view per table whose version differs from `known`; returns the versions now used."""
    current = table_versions(lake)
    for name, version in current.items():
        if known is None or name not in known or known[name] != version:
            read_version(spark, name, version).createOrReplaceTempView(name)
    return current


# --- the JDBC server ---------------------------------------------------------------------------
def _quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _quote_str(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def view_sql(table: str, version: Path | None) -> str:
    """CREATE OR REPLACE VIEW for one table: over its version directory, or typed and empty before it has data."""
    spec = LAKE_TABLES[table]
    if _has_data(version):
        body = f"SELECT * FROM parquet.{_quote_ident(str(version))}"
    else:
        cols = ", ".join(f"CAST(NULL AS {c.type}) AS {_quote_ident(c.name)}" for c in spec.columns)
        body = f"SELECT {cols} WHERE false"
    return f"CREATE OR REPLACE VIEW {_quote_ident(table)} COMMENT {_quote_str(spec.doc)} AS {body}"


def check_port_free(host: str, port: int) -> None:
    """Fail in one line when the address is taken, before spending a minute on starting Spark."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror} (another serve-sql? pass --port)") from exc


def server_session(settings: Settings, workdir: Path, host: str, port: int) -> SparkSession:
    """A Hive-enabled session whose Derby metastore, warehouse and derby.log live in `workdir`."""
    from jobs.session import get_spark

    return get_spark(
        settings,
        "enumwatch-serve-sql",
        hive=True,
        extra={
            "spark.sql.warehouse.dir": str(workdir / "warehouse"),
            "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={workdir / 'metastore_db'};create=true",
            "spark.driver.extraJavaOptions": f"-Dderby.stream.error.file={workdir / 'derby.log'}",
            # The Thrift server reads its Hive conf from the Hadoop conf, which takes spark.hadoop.* entries.
            "spark.hadoop.hive.server2.thrift.bind.host": host,
            "spark.hadoop.hive.server2.thrift.port": str(port),
            "spark.hadoop.hive.server2.transport.mode": "binary",
            # Files kept from older runs may lack columns added since: read every footer, not just one.
            "spark.sql.parquet.mergeSchema": "true",
            "spark.ui.showConsoleProgress": "false",
        },
    )


@dataclass
class SqlServer:
    """A running Thrift server over one lake; `refresh()` follows new versions, `stop()` ends it."""

    spark: SparkSession
    lake: Lake
    host: str
    port: int
    workdir: Path
    jserver: object
    versions: dict[str, Path | None] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The JDBC URL clients connect to."""
        return f"jdbc:hive2://{self.host}:{self.port}/default"

    def refresh(self) -> list[str]:
        """Re-point the views of tables published since the last call; returns their names."""
        current = table_versions(self.lake)
        changed = [
            name for name, version in current.items() if name not in self.versions or self.versions[name] != version
        ]
        for name in changed:
            self.spark.sql(view_sql(name, current[name]))
        self.versions = current
        return changed

    def stop(self) -> None:
        """Stop the server and Spark, and drop the temporary metastore (the JVM may already be gone)."""
        steps = ([self.jserver.stop] if self.jserver is not None else []) + [self.spark.stop]
        for step in steps:
            try:
                step()
            except Exception:  # a JVM killed with its process group: nothing left to stop
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)


def wait_listening(host: str, port: int, timeout_s: float = 30.0) -> bool:
    """True once host:port accepts a TCP connection, False after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=2):
                return True
        except OSError:
            time.sleep(0.5)
    return False


def start_server(settings: Settings, lake: Lake, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> SqlServer:
    """Create the views and start HiveThriftServer2 on host:port (no authentication: keep it on loopback)."""
    if not lake.root.exists():
        raise UserError(f"no lake at {lake.root} (run 'enumwatch ingest' first or pass --lake)")
    check_port_free(host, port)
    workdir = Path(tempfile.mkdtemp(prefix="enumwatch-sql-"))
    spark = server_session(settings, workdir, host, port)
    server = SqlServer(spark, lake, host, port, workdir, jserver=None)
    try:
        server.refresh()
        thrift = spark._jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2
        server.jserver = thrift.startWithContext(spark._jsparkSession.sqlContext())
        # Never report success for a server that is not listening where it was asked to.
        if not wait_listening(host, port):
            raise UserError(f"the Spark Thrift server did not start listening on {host}:{port}")
        return server
    except BaseException:
        server.stop()
        raise
