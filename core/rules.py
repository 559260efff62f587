"""Detection rules as reviewable data: loads and validates config/rules.yaml.

Validation happens here, in plain Python, so a typo in a threshold fails at load time with the file
and rule named, and unit tests can check the rule file without Spark.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.settings import REPO_ROOT

DEFAULT_RULES = REPO_ROOT / "config" / "rules.yaml"
SEVERITIES = ("low", "medium", "high", "critical")
WINDOW_KINDS = ("hour", "day", "7d")
METRICS = (
    "lookups",
    "distinct_ids",
    "distinct_names",
    "distinct_watchlist",
    "hits",
    "misses",
    "miss_share",
    "invalid_id_share",
    "max_seqs_per_prefix",
    "consecutive_share",
    "distinct_clients",
    "distinct_devices",
    "distinct_ips",
    "active_days",
)
# What links accounts into a group: one device fingerprint; one /24 (IPv4) or /64 (IPv6) with one
# user agent; one user agent whose accounts started within `start_gap_minutes` of each other.
CAMPAIGN_LINKS = ("device_id", "subnet_user_agent", "user_agent_start")
# Group conditions a campaign rule may set: minimums (group >= value) and maximums (group <= value).
CAMPAIGN_MINIMUMS = (
    "min_members",
    "min_distinct_ids",
    "min_member_median_ids",
    "min_disjointness",
    "min_distinct_watchlist",
    "min_watchlist_member_share",
    "min_watchlist_disjointness",
    "min_hit_share",
)
CAMPAIGN_MAXIMUMS = ("max_start_spread_hours",)
CAMPAIGN_SHARES = ("min_disjointness", "min_watchlist_member_share", "min_watchlist_disjointness", "min_hit_share")
TARGET_TYPES = ("watchlist", "id_prefix")
TARGET_METRICS = ("distinct_entities", "hit_entities", "flagged_entities", "lookups", "hits")


class RulesError(ValueError):
    """A rules file that cannot be used, naming the file and the rule."""


@dataclass(frozen=True)
class ThresholdRule:
    """Fires when every metric reaches its threshold in a window of that kind."""

    name: str
    description: str
    severity: str
    enabled: bool
    shadow: bool
    when: dict[str, dict[str, float]]

    def windows(self) -> list[str]:
        """Window kinds in which every condition has a threshold."""
        return [w for w in WINDOW_KINDS if all(w in by_window for by_window in self.when.values())]


@dataclass(frozen=True)
class PopulationRule:
    """Fires when a metric is far above the robust baseline of the same day's population."""

    name: str
    description: str
    severity: str
    enabled: bool
    shadow: bool
    metric: str
    window: str
    k_mad: float
    min_population: int
    min_value: float


@dataclass(frozen=True)
class CampaignRule:
    """Groups accounts linked by a shared attribute and fires when the group meets every condition.

    The conditions judge the group, not its members: how many accounts, how many distinct targets
    and watchlist people together, how disjoint their targets are, the share of lookups that
    returned data, and how close together the members started (fresh accounts working as one).
    """

    name: str
    description: str
    severity: str
    enabled: bool
    shadow: bool
    link: str
    min_members: int
    min_distinct_ids: int = 0
    min_member_median_ids: float = 0
    min_disjointness: float = 0
    min_distinct_watchlist: float = 0
    min_watchlist_member_share: float = 0
    min_watchlist_disjointness: float = 0
    min_hit_share: float = 0
    max_start_spread_hours: float | None = None
    start_gap_minutes: float = 30
    # Which members a flag names: all of them, or only those that looked up a watchlist person (a
    # split-list campaign's evidence; ordinary accounts that happen to share its links stay out).
    evidence_members: str = "all"

    def minimums(self) -> dict[str, float]:
        """The group metrics (campaigns columns) this rule needs at least, when set."""
        column = {"min_members": "n_members"}
        return {column.get(k, k[4:]): getattr(self, k) for k in CAMPAIGN_MINIMUMS if getattr(self, k)}


@dataclass(frozen=True)
class TargetRule:
    """Fires for a target (watchlist person or ID prefix) and day when a `targets` metric reaches a minimum."""

    name: str
    description: str
    severity: str
    enabled: bool
    shadow: bool
    target_type: str
    metric: str
    min_value: float


@dataclass(frozen=True)
class RuleSet:
    """Everything config/rules.yaml says."""

    source: str
    hll_lg_config_k: int
    windows: dict[str, dict[str, Any]]
    scoring: dict[str, Any]
    threshold: list[ThresholdRule] = field(default_factory=list)
    population: list[PopulationRule] = field(default_factory=list)
    campaigns: list[CampaignRule] = field(default_factory=list)
    targets: list[TargetRule] = field(default_factory=list)

    def severity_of(self, rule_name: str) -> str:
        """The base severity of a rule by name."""
        for rule in [*self.threshold, *self.population, *self.campaigns, *self.targets]:
            if rule.name == rule_name:
                return rule.severity
        raise KeyError(rule_name)

    @property
    def enabled_windows(self) -> list[str]:
        """Window kinds the detector computes."""
        return [w for w in WINDOW_KINDS if self.windows.get(w, {}).get("enabled", False)]

    @property
    def campaign_digest(self) -> str:
        """A digest of what campaign detection applies: the enabled campaign rules and the sketch size.

        A detection run carries campaigns over only from a run with the same digest, so an edited
        threshold takes effect on every group at once.
        """
        applied = {"rules": [asdict(r) for r in self.campaigns if r.enabled], "hll_lg_config_k": self.hll_lg_config_k}
        return hashlib.sha256(json.dumps(applied, sort_keys=True).encode()).hexdigest()[:16]


def _common(raw: dict[str, Any], where: str) -> dict[str, Any]:
    for key in ("name", "description", "severity"):
        if not raw.get(key):
            raise RulesError(f"{where}: missing '{key}'")
    if raw["severity"] not in SEVERITIES:
        raise RulesError(f"{where}: severity must be one of {', '.join(SEVERITIES)}, not {raw['severity']!r}")
    for flag in ("enabled", "shadow"):
        # bool("false") is True: a quoted flag would silently turn a disabled rule on.
        if flag in raw and not isinstance(raw[flag], bool):
            raise RulesError(f"{where}: '{flag}' must be true or false, not {raw[flag]!r}")
    return {
        "name": str(raw["name"]),
        "description": str(raw["description"]),
        "severity": raw["severity"],
        "enabled": bool(raw.get("enabled", True)),
        "shadow": bool(raw.get("shadow", False)),
    }


def _threshold(raw: dict[str, Any], where: str) -> ThresholdRule:
    when = raw.get("when")
    if not isinstance(when, dict) or not when:
        raise RulesError(f"{where}: needs a 'when' mapping of metric -> {{window: threshold}}")
    parsed: dict[str, dict[str, float]] = {}
    for metric, by_window in when.items():
        if metric not in METRICS:
            raise RulesError(f"{where}: unknown metric {metric!r}; known: {', '.join(METRICS)}")
        if not isinstance(by_window, dict) or not set(by_window) <= set(WINDOW_KINDS):
            raise RulesError(f"{where}: thresholds of {metric!r} must be keyed by {', '.join(WINDOW_KINDS)}")
        try:
            parsed[metric] = {w: float(v) for w, v in by_window.items()}
        except (TypeError, ValueError) as exc:
            raise RulesError(f"{where}: threshold of {metric!r} is not a number") from exc
    rule = ThresholdRule(**_common(raw, where), when=parsed)
    if not rule.windows():
        raise RulesError(f"{where}: no window kind has a threshold for every condition")
    return rule


def _number(raw: dict[str, Any], key: str, where: str, default: float | None = None) -> float:
    value = raw.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise RulesError(f"{where}: '{key}' must be a number")
    return value


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, except that a key given twice in one mapping is refused: YAML would keep the last silently."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise RulesError(f"line {key_node.start_mark.line + 1}: key {key!r} given twice in one mapping")
            seen.add(key)
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path, warnings: list[str] | None) -> Any:
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except OSError as exc:
        raise RulesError(f"{path}: cannot read rules: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RulesError(f"{path}:{line}: not UTF-8") from exc
    if text.startswith("\ufeff"):
        text = text[1:]
        if warnings is not None:
            warnings.append(f"{path}:1: UTF-8 byte-order mark ignored")
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except RulesError as exc:
        raise RulesError(f"{path}:{str(exc).removeprefix('line ')}") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise RulesError(f"{where}: not valid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc


def load_rules(path: Path | None = None, warnings: list[str] | None = None) -> RuleSet:
    """Load and validate a rules file (default config/rules.yaml); lenient readings go to `warnings`."""
    path = path or DEFAULT_RULES
    doc = _read_yaml(path, warnings)
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise RulesError(f"{path}: expected a mapping with 'version: 1'")
    ruleset = RuleSet(
        source=str(path),
        hll_lg_config_k=int(_number(doc, "hll_lg_config_k", str(path), 14)),
        windows=doc.get("windows") or {w: {"enabled": True} for w in WINDOW_KINDS},
        scoring=doc.get("scoring") or {},
    )
    names: dict[str, Any] = {}

    def entry(section: str, i: int, raw: Any) -> str | None:
        """Where the rule is, for messages; None for an exact repeat of a rule already read (warned, skipped)."""
        if not isinstance(raw, dict):
            raise RulesError(f"{path}: {section}[{i}]: each rule must be a mapping, not {type(raw).__name__}")
        where = f"{path}: {section}[{i}] ({raw.get('name', '?')})"
        if raw.get("name") in names:
            if names[raw["name"]] == raw:
                if warnings is not None:
                    warnings.append(f"{where}: repeats rule {raw['name']!r} word for word; read once")
                return None
            raise RulesError(f"{where}: two different rules are named {raw['name']!r}; rule names must be unique")
        return where

    for i, raw in enumerate(doc.get("rules") or []):
        where = entry("rules", i, raw)
        if where is None:
            continue
        if raw.get("kind", "threshold") == "population":
            common = _common(raw, where)
            if raw.get("metric") not in METRICS or raw.get("window") not in WINDOW_KINDS:
                raise RulesError(f"{where}: population rules need a known 'metric' and 'window'")
            ruleset.population.append(
                PopulationRule(
                    **common,
                    metric=raw["metric"],
                    window=raw["window"],
                    k_mad=_number(raw, "k_mad", where),
                    min_population=int(_number(raw, "min_population", where)),
                    min_value=_number(raw, "min_value", where, 0),
                )
            )
        else:
            ruleset.threshold.append(_threshold(raw, where))
        names[raw["name"]] = raw
    for i, raw in enumerate(doc.get("campaigns") or []):
        where = entry("campaigns", i, raw)
        if where is None:
            continue
        ruleset.campaigns.append(_campaign(raw, where))
        names[raw["name"]] = raw
    for i, raw in enumerate(doc.get("targets") or []):
        where = entry("targets", i, raw)
        if where is None:
            continue
        common = _common(raw, where)
        if raw.get("target_type") not in TARGET_TYPES or raw.get("metric") not in TARGET_METRICS:
            raise RulesError(
                f"{where}: target rules need 'target_type' ({', '.join(TARGET_TYPES)}) "
                f"and 'metric' ({', '.join(TARGET_METRICS)})"
            )
        ruleset.targets.append(
            TargetRule(
                **common,
                target_type=raw["target_type"],
                metric=raw["metric"],
                min_value=_number(raw, "min_value", where),
            )
        )
        names[raw["name"]] = raw
    return ruleset


_CAMPAIGN_KEYS = {
    "name",
    "description",
    "severity",
    "enabled",
    "shadow",
    "link",
    "start_gap_minutes",
    "evidence_members",
}
EVIDENCE_MEMBERS = ("all", "watchlist")


def _campaign(raw: dict[str, Any], where: str) -> CampaignRule:
    common = _common(raw, where)
    if raw.get("link") not in CAMPAIGN_LINKS:
        raise RulesError(f"{where}: 'link' must be one of {', '.join(CAMPAIGN_LINKS)}")
    # A misspelt condition would silently not apply: a rule that flags far more than reviewed.
    unknown = set(raw) - _CAMPAIGN_KEYS - set(CAMPAIGN_MINIMUMS) - set(CAMPAIGN_MAXIMUMS)
    if unknown:
        known = ", ".join([*CAMPAIGN_MINIMUMS, *CAMPAIGN_MAXIMUMS, "start_gap_minutes"])
        raise RulesError(f"{where}: unknown campaign condition(s) {', '.join(sorted(unknown))}; known: {known}")
    values: dict[str, Any] = {k: _number(raw, k, where) for k in CAMPAIGN_MINIMUMS if k in raw}
    values["min_members"] = int(_number(raw, "min_members", where))
    if values["min_members"] < 2:
        raise RulesError(f"{where}: 'min_members' must be at least 2: one account is not a group")
    for k in CAMPAIGN_SHARES:
        if not 0 <= values.get(k, 0) <= 1:
            raise RulesError(f"{where}: '{k}' is a share and must lie between 0 and 1")
    if "max_start_spread_hours" in raw:
        values["max_start_spread_hours"] = _number(raw, "max_start_spread_hours", where)
    if raw["link"] == "user_agent_start":
        values["start_gap_minutes"] = _number(raw, "start_gap_minutes", where, 30)
        if values["start_gap_minutes"] <= 0:
            raise RulesError(f"{where}: 'start_gap_minutes' must be positive")
    elif "start_gap_minutes" in raw:
        raise RulesError(f"{where}: 'start_gap_minutes' applies only to link user_agent_start")
    if raw.get("evidence_members", "all") not in EVIDENCE_MEMBERS:
        raise RulesError(f"{where}: 'evidence_members' must be one of {', '.join(EVIDENCE_MEMBERS)}")
    values["evidence_members"] = raw.get("evidence_members", "all")
    if "min_distinct_ids" in values:
        values["min_distinct_ids"] = int(values["min_distinct_ids"])
    return CampaignRule(**common, link=raw["link"], **values)
