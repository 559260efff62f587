"""One validated settings object, built once from the config file, the environment and the CLI.

Library code never reads the environment itself: the CLI and the flows call `load_settings` and pass
the result down, so a test or a cluster job sees exactly the settings it was given.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from schemas import LAKE_TABLES

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO_ROOT / "config" / "enumwatch.toml"


class ConfigError(ValueError):
    """A config file or setting that cannot be used, with the file or key it came from."""


@dataclass(frozen=True)
class LookupSpec:
    """Which requests are lookups and where the sensitive values sit in their query string."""

    endpoint: str
    id_param: str
    name_param: str


_SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class AlertSettings:
    """Where on-call alerts go and how often one entity may be alerted again."""

    # From ENUMWATCH_WEBHOOK_URL or [alerts] webhook_url; out of repr because a Slack URL embeds its secret.
    webhook_url: str | None = field(default=None, repr=False)
    webhook_format: str = "slack"
    out_dir: Path | None = None
    min_severity: str = "low"
    retries: int = 3
    backoff_seconds: float = 1.0
    timeout_seconds: float = 10.0
    # (severity, hours) pairs: a tuple keeps the frozen settings hashable.
    suppress_hours: tuple[tuple[str, float], ...] = tuple((s, 24.0) for s in _SEVERITIES)

    def suppress_for(self, severity: str) -> timedelta:
        """How long an alert at `severity` keeps the same entity from being alerted again."""
        return timedelta(hours=dict(self.suppress_hours).get(severity, 24.0))

    def directory(self, lake: Path) -> Path:
        """The folder for per-run alert files: out_dir, else `alerts-out` beside the lake."""
        return (self.out_dir or lake.expanduser().absolute().parent / "alerts-out").expanduser()


@dataclass(frozen=True)
class MaintenanceSettings:
    """How long each table keeps its data, how far compaction lets files pile up, when `status` pages."""

    # (table, days) pairs, 0 = keep forever; a tuple keeps the frozen settings hashable.
    retention_days: tuple[tuple[str, int], ...] = ()
    compact_max_files: int = 16
    compact_rows_per_file: int = 2_000_000
    heartbeat_max_minutes: float = 130.0
    lock_max_minutes: float = 120.0
    staging_max_minutes: float = 60.0
    min_free_share: float = 0.10
    retention_grace_days: int = 2

    def retention_for(self, table: str) -> int:
        """Days `table` keeps its data (0: forever, also for a table the config does not name)."""
        return dict(self.retention_days).get(table, 0)


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know that is not input data."""

    lake: Path
    keep_versions: int
    spark_master: str
    shuffle_partitions: int
    driver_memory: str
    # Added to the driver JVM's command line (jobs/session.get_spark); in local mode that JVM runs the tasks too.
    driver_java_options: str
    # Inputs of at least this many bytes run as generated code (jobs/session.generated_code); smaller, interpreted.
    codegen_min_bytes: int
    lookup: LookupSpec
    min_event_time: datetime
    max_future_skew: timedelta
    max_line_bytes: int
    quarantine_warn_share: float
    quarantine_fail_share: float
    key_file: Path
    # From ENUMWATCH_PSEUDONYM_KEY only; kept out of repr so it never reaches a log line.
    pseudonym_key: str | None = field(default=None, repr=False)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    # GX Data Docs sites, one per run: [data_docs] path, else <lake>/_docs.
    docs_dir: Path | None = None
    docs_keep_runs: int = 50
    maintenance: MaintenanceSettings = field(default_factory=MaintenanceSettings)
    # What the config file said that was read leniently or ignored; the flows log it, naming the file.
    warnings: tuple[str, ...] = field(default=(), compare=False)
    # How long a writer waits for another run's lake lock before it fails ([lake] lock_wait_seconds).
    lock_wait_seconds: float = 1800.0

    def docs_root(self) -> Path:
        """Where the per-run Data Docs sites go: docs_dir, else `_docs` in the lake root."""
        return (self.docs_dir or self.lake.expanduser() / "_docs").expanduser().absolute()

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with the given fields replaced, skipping None values (unset CLI flags)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _get(table: Mapping[str, Any], dotted: str, source: Path) -> Any:
    node: Any = table
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(f"{source}: missing setting '{dotted}'")
        node = node[part]
    return node


def _parse_time(value: str, key: str, source: Path) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"{source}: '{key}' is not an ISO 8601 time: {value!r}") from exc
    if parsed.tzinfo is None:
        raise ConfigError(f"{source}: '{key}' needs a UTC offset or Z: {value!r}")
    return parsed.astimezone(timezone.utc)


def _read_toml(path: Path, warnings: list[str] | None = None) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
    if data.startswith(b"\xef\xbb\xbf"):  # TOML forbids it, but editors on Windows add it
        data = data[3:]
        if warnings is not None:
            warnings.append(f"{path}:1: UTF-8 byte-order mark ignored")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}:{line}: not UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _check_types(defaults: Mapping[str, Any], given: Mapping[str, Any], source: Path, warnings: list[str]) -> None:
    """Compare a config file with the defaults: unknown keys warn, a value of the wrong kind is refused.

    A misspelt key would otherwise be ignored without a word, and `keep_versions = "two"` would end
    in a ValueError traceback instead of one line naming the setting.
    """

    def walk(default: Mapping[str, Any], value: Mapping[str, Any], prefix: str) -> None:
        for key, got in value.items():
            name = f"{prefix}{key}"
            if key not in default:
                warnings.append(f"{source}: unknown setting '{name}' ignored")
                continue
            want = default[key]
            if isinstance(want, Mapping):
                if not isinstance(got, Mapping):
                    raise ConfigError(f"{source}: '{name}' must be a table ([{name}]), not {got!r}")
                walk(want, got, f"{name}.")
            elif isinstance(want, (int, float)) and not isinstance(want, bool):
                if isinstance(got, bool) or not isinstance(got, (int, float, str)):
                    raise ConfigError(f"{source}: '{name}' must be a number, not {got!r}")
                if isinstance(got, str):
                    try:
                        float(got)
                    except ValueError:
                        raise ConfigError(f"{source}: '{name}' must be a number, not {got!r}") from None
                    warnings.append(f"{source}: '{name}' is a quoted number {got!r}; read as a number")
            elif isinstance(want, str) and not isinstance(got, str):
                raise ConfigError(f"{source}: '{name}' must be a quoted string, not {got!r}")

    walk(defaults, given, "")


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _alert_settings(raw: Mapping[str, Any], source: Path, env: Mapping[str, str]) -> AlertSettings:
    fmt = str(_get(raw, "alerts.webhook_format", source))
    if fmt not in ("slack", "json"):
        raise ConfigError(f"{source}: 'alerts.webhook_format' must be slack or json, not {fmt!r}")
    min_severity = str(_get(raw, "alerts.min_severity", source))
    if min_severity not in _SEVERITIES:
        raise ConfigError(f"{source}: 'alerts.min_severity' must be one of {', '.join(_SEVERITIES)}")
    hours = dict(_get(raw, "alerts.suppress_hours", source))
    unknown = set(hours) - set(_SEVERITIES)
    if unknown or any(float(h) < 0 for h in hours.values()):
        raise ConfigError(f"{source}: 'alerts.suppress_hours' takes hours >= 0 for {', '.join(_SEVERITIES)}")
    retries = int(_get(raw, "alerts.retries", source))
    if retries < 1:
        raise ConfigError(f"{source}: 'alerts.retries' must be at least 1")
    out_dir = str(_get(raw, "alerts.out_dir", source))
    return AlertSettings(
        webhook_url=env.get("ENUMWATCH_WEBHOOK_URL") or str(_get(raw, "alerts.webhook_url", source)) or None,
        webhook_format=fmt,
        out_dir=Path(out_dir).expanduser() if out_dir else None,
        min_severity=min_severity,
        retries=retries,
        backoff_seconds=float(_get(raw, "alerts.backoff_seconds", source)),
        timeout_seconds=float(_get(raw, "alerts.timeout_seconds", source)),
        suppress_hours=tuple((s, float(hours.get(s, 24.0))) for s in _SEVERITIES),
    )


# Detection's 7-day windows are rebuilt from the last 7 days of stored days, so nothing may expire sooner.
MIN_RETENTION_DAYS = 8


def _maintenance_settings(raw: Mapping[str, Any], source: Path) -> MaintenanceSettings:
    days = dict(_get(raw, "retention", source))
    unknown = sorted(set(days) - set(LAKE_TABLES))
    if unknown:
        raise ConfigError(f"{source}: [retention] names no lake table: {', '.join(unknown)}")
    for table, value in days.items():
        if not isinstance(value, int) or isinstance(value, bool) or (0 < value < MIN_RETENTION_DAYS) or value < 0:
            raise ConfigError(
                f"{source}: 'retention.{table}' must be 0 (keep forever) or a whole number of days >= {MIN_RETENTION_DAYS}"
            )

    def forever(table: str) -> float:
        return days.get(table, 0) or float("inf")

    # Incremental detection skips ingest runs that detect_runs says it took in; forgetting them sooner
    # than their requests would make it recompute old dates.
    if forever("detect_runs") < forever("requests"):
        raise ConfigError(f"{source}: 'retention.detect_runs' must keep at least as long as 'retention.requests'")
    settings = MaintenanceSettings(
        retention_days=tuple(sorted((t, int(d)) for t, d in days.items())),
        compact_max_files=int(_get(raw, "compaction.max_files_per_partition", source)),
        compact_rows_per_file=int(_get(raw, "compaction.max_rows_per_file", source)),
        heartbeat_max_minutes=float(_get(raw, "status.heartbeat_max_minutes", source)),
        lock_max_minutes=float(_get(raw, "status.lock_max_minutes", source)),
        staging_max_minutes=float(_get(raw, "status.staging_max_minutes", source)),
        min_free_share=float(_get(raw, "status.min_free_share", source)),
        retention_grace_days=int(_get(raw, "status.retention_grace_days", source)),
    )
    if settings.compact_max_files < 1 or settings.compact_rows_per_file < 1:
        raise ConfigError(f"{source}: 'compaction.max_files_per_partition' and 'max_rows_per_file' must be >= 1")
    if not 0 <= settings.min_free_share < 1:
        raise ConfigError(f"{source}: 'status.min_free_share' must be in [0, 1)")
    return settings


def load_settings(config: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then the --config / ENUMWATCH_CONFIG file, then ENUMWATCH_LAKE and SPARK_MASTER."""
    env = os.environ if env is None else env
    raw = _read_toml(DEFAULT_CONFIG)
    source = DEFAULT_CONFIG
    warnings: list[str] = []
    config = config or (Path(env["ENUMWATCH_CONFIG"]) if env.get("ENUMWATCH_CONFIG") else None)
    if config is not None:
        given = _read_toml(config, warnings)
        _check_types(raw, given, config, warnings)
        raw = _merge(raw, given)
        source = config
    warn = float(_get(raw, "ingest.quarantine_warn_share", source))
    fail = float(_get(raw, "ingest.quarantine_fail_share", source))
    if not 0 <= warn <= fail <= 1:
        raise ConfigError(f"{source}: need 0 <= quarantine_warn_share <= quarantine_fail_share <= 1")
    docs_path = str(_get(raw, "data_docs.path", source))
    return Settings(
        lake=Path(env.get("ENUMWATCH_LAKE") or _get(raw, "lake.path", source)).expanduser(),
        keep_versions=int(_get(raw, "lake.keep_versions", source)),
        spark_master=env.get("SPARK_MASTER") or str(_get(raw, "spark.master", source)),
        shuffle_partitions=int(_get(raw, "spark.shuffle_partitions", source)),
        driver_memory=str(_get(raw, "spark.driver_memory", source)),
        driver_java_options=str(_get(raw, "spark.driver_java_options", source)),
        codegen_min_bytes=int(float(_get(raw, "spark.codegen_min_mb", source)) * 2**20),
        lookup=LookupSpec(
            endpoint=str(_get(raw, "lookup.endpoint", source)),
            id_param=str(_get(raw, "lookup.id_param", source)),
            name_param=str(_get(raw, "lookup.name_param", source)),
        ),
        min_event_time=_parse_time(str(_get(raw, "ingest.min_event_time", source)), "ingest.min_event_time", source),
        max_future_skew=timedelta(hours=float(_get(raw, "ingest.max_future_skew_hours", source))),
        max_line_bytes=int(_get(raw, "ingest.max_line_bytes", source)),
        quarantine_warn_share=warn,
        quarantine_fail_share=fail,
        key_file=Path(env.get("ENUMWATCH_KEY_FILE") or _get(raw, "pseudonym.key_file", source)).expanduser(),
        pseudonym_key=env.get("ENUMWATCH_PSEUDONYM_KEY") or None,
        alerts=_alert_settings(raw, source, env),
        docs_dir=Path(docs_path).expanduser() if docs_path else None,
        docs_keep_runs=int(_get(raw, "data_docs.keep_runs", source)),
        maintenance=_maintenance_settings(raw, source),
        warnings=tuple(warnings),
        lock_wait_seconds=float(_get(raw, "lake.lock_wait_seconds", source)),
    )
