"""The rules file: config/rules.yaml loads, every rule is complete, and broken files name file and rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from core.rules import DEFAULT_RULES, SEVERITIES, RulesError, ThresholdRule, load_rules
from core.settings import REPO_ROOT

RULE_KEYS = ("name", "description", "severity", "enabled", "shadow")
REQUIRED_RULES = (
    "many_distinct_ids",
    "many_distinct_names",
    "watchlist_targeting",
    "suffix_brute_force",
    "sequential_scan",
    "high_invalid_id_share",
    "high_miss_share",
    "low_and_slow",
    "population_outlier",
    "device_account_farm",
    "subnet_campaign",
    "split_list_subnet",
    "split_list_start",
    "split_list_device",
    "fresh_device_group",
    "watchlist_widely_returned",
)
CAMPAIGN = (
    "  - name: split\n    description: d\n    severity: high\n    enabled: true\n    shadow: false\n"
    "    link: user_agent_start\n    start_gap_minutes: 30\n    min_members: 6\n    min_disjointness: 0.8\n"
)
GOOD_RULE = """
  - name: many_ids
    description: Many distinct IDs.
    severity: high
    enabled: true
    shadow: false
    when:
      distinct_ids: {hour: 30, day: 50}
"""


def _raw_rules() -> list[dict]:
    doc = yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))
    return [*doc["rules"], *doc["campaigns"], *doc["targets"]]


def _write(tmp_path: Path, rules: str, campaigns: str = "") -> Path:
    path = tmp_path / "rules.yaml"
    text = "version: 1\nrules:\n" + rules
    if campaigns:
        text += "campaigns:\n" + campaigns
    path.write_text(text, encoding="utf-8")
    return path


def test_load_rules_reads_the_shipped_file_with_every_required_rule():
    ruleset = load_rules()
    names = [r.name for r in [*ruleset.threshold, *ruleset.population, *ruleset.campaigns, *ruleset.targets]]
    assert sorted(names) == sorted(REQUIRED_RULES)
    assert ruleset.enabled_windows == ["hour", "day", "7d"]


@pytest.mark.parametrize("raw", _raw_rules(), ids=lambda raw: raw.get("name", "?"))
def test_rules_file_entry_states_every_common_key_explicitly(raw):
    missing = [k for k in RULE_KEYS if k not in raw]
    assert not missing, f"{raw.get('name')} relies on defaults for {missing}"
    assert raw["severity"] in SEVERITIES
    assert isinstance(raw["enabled"], bool) and isinstance(raw["shadow"], bool)
    assert raw["description"].strip()


def test_load_rules_threshold_rule_looks_only_at_windows_where_every_condition_has_a_threshold(tmp_path):
    path = _write(
        tmp_path,
        """
  - name: scan
    description: Sequential scan.
    severity: high
    enabled: true
    shadow: false
    when:
      consecutive_share: {hour: 0.5, day: 0.5, 7d: 0.5}
      distinct_ids: {day: 20}
""",
    )
    (rule,) = load_rules(path).threshold
    assert rule == ThresholdRule(
        name="scan",
        description="Sequential scan.",
        severity="high",
        enabled=True,
        shadow=False,
        when={"consecutive_share": {"hour": 0.5, "day": 0.5, "7d": 0.5}, "distinct_ids": {"day": 20.0}},
    )
    assert rule.windows() == ["day"]


def test_load_rules_severity_of_finds_campaign_and_population_rules():
    ruleset = load_rules()
    assert ruleset.severity_of("subnet_campaign") == "high"
    assert ruleset.severity_of("population_outlier") == "medium"
    assert ruleset.severity_of("watchlist_widely_returned") == "high"
    with pytest.raises(KeyError):
        ruleset.severity_of("no_such_rule")


BAD_FILES = [
    pytest.param(
        GOOD_RULE.replace("distinct_ids:", "distinct_idz:"),
        "",
        "many_ids",
        "unknown metric",
        id="a misspelt metric would never fire",
    ),
    pytest.param(
        GOOD_RULE.replace("severity: high", "severity: urgent"),
        "",
        "many_ids",
        "severity must be one of",
        id="a severity outside low..critical cannot be ranked",
    ),
    pytest.param(
        GOOD_RULE.split("    when:")[0],
        "",
        "many_ids",
        "needs a 'when' mapping",
        id="a threshold rule without conditions would fire on everything",
    ),
    pytest.param(
        GOOD_RULE + GOOD_RULE.replace("Many distinct IDs.", "Again."),
        "",
        "many_ids",
        "two different rules are named 'many_ids'",
        id="two rules with one name make flags ambiguous",
    ),
    pytest.param(
        GOOD_RULE,
        "  - name: many_ids\n    description: d\n    severity: high\n    enabled: true\n    shadow: false\n"
        "    link: device_id\n    min_members: 8\n    min_distinct_ids: 50\n",
        "many_ids",
        "two different rules are named 'many_ids'",
        id="a campaign rule may not reuse a threshold rule's name",
    ),
    pytest.param(
        GOOD_RULE.replace("{hour: 30, day: 50}", "{hour: 30, week: 50}"),
        "",
        "many_ids",
        "keyed by",
        id="a window kind the detector does not compute",
    ),
    pytest.param(
        GOOD_RULE.replace("{hour: 30, day: 50}", "{hour: 30, day: lots}"),
        "",
        "many_ids",
        "not a number",
        id="a threshold that is not a number",
    ),
    pytest.param(
        GOOD_RULE.replace(
            "    when:\n      distinct_ids: {hour: 30, day: 50}",
            "    when:\n      distinct_ids: {hour: 30}\n      lookups: {day: 50}",
        ),
        "",
        "many_ids",
        "no window kind has a threshold for every condition",
        id="conditions that never share a window can never all hold",
    ),
    pytest.param(
        GOOD_RULE.replace("enabled: true", 'enabled: "false"'),
        "",
        "many_ids",
        "'enabled' must be true or false",
        id="a quoted false is truthy and would switch the rule on",
    ),
    pytest.param(
        GOOD_RULE.replace("description: Many distinct IDs.", "description: ''"),
        "",
        "many_ids",
        "missing 'description'",
        id="every rule explains itself",
    ),
    pytest.param(
        "  - name: outlier\n    description: d\n    severity: medium\n    enabled: true\n    shadow: true\n"
        "    kind: population\n    metric: distinct_ids\n    window: day\n    min_population: 50\n",
        "",
        "outlier",
        "'k_mad' must be a number",
        id="a population rule without its k_mad has no limit",
    ),
    pytest.param(
        "  - name: outlier\n    description: d\n    severity: medium\n    enabled: true\n    shadow: true\n"
        "    kind: population\n    metric: distinct_idz\n    window: day\n    k_mad: 10\n    min_population: 50\n",
        "",
        "outlier",
        "known 'metric'",
        id="a population rule on an unknown metric",
    ),
    pytest.param(
        GOOD_RULE,
        "  - name: farm\n    description: d\n    severity: high\n    enabled: true\n    shadow: false\n"
        "    link: cookie\n    min_members: 8\n    min_distinct_ids: 50\n",
        "farm",
        "'link' must be one of",
        id="a campaign linked by an attribute the detector does not group on",
    ),
    pytest.param(
        GOOD_RULE,
        CAMPAIGN.replace("min_members: 6", "min_members: 6\n    min_distinct_watchlists: 6"),
        "split",
        "unknown campaign condition(s) min_distinct_watchlists",
        id="a misspelt group condition would silently not apply",
    ),
    pytest.param(
        GOOD_RULE,
        CAMPAIGN.replace("min_disjointness: 0.8", "min_disjointness: 80"),
        "split",
        "'min_disjointness' is a share",
        id="a share written as a percentage could never hold",
    ),
    pytest.param(
        GOOD_RULE,
        CAMPAIGN.replace("min_members: 6", "min_members: 1"),
        "split",
        "one account is not a group",
        id="a group of one would flag every account",
    ),
    pytest.param(
        GOOD_RULE,
        CAMPAIGN.replace("link: user_agent_start", "link: device_id"),
        "split",
        "applies only to link user_agent_start",
        id="a start gap on a link that does not use it",
    ),
    pytest.param(
        GOOD_RULE,
        CAMPAIGN + "    evidence_members: some\n",
        "split",
        "'evidence_members' must be one of all, watchlist",
        id="members named as evidence are all or the watchlist ones",
    ),
]


@pytest.mark.parametrize(("rules", "campaigns", "rule_name", "message"), BAD_FILES)
def test_load_rules_bad_file_raises_rules_error_naming_file_and_rule(tmp_path, rules, campaigns, rule_name, message):
    path = _write(tmp_path, rules, campaigns)
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    text = str(caught.value)
    assert str(path) in text
    assert f"({rule_name})" in text
    assert message in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("version: 1\nrules:\n  - name: [unclosed\n", "not valid YAML", id="broken YAML syntax"),
        pytest.param(
            "version: 1\nrules:\n\t- name: x\n", "rules.yaml:3: not valid YAML: found character", id="a tab on line 3"
        ),
        pytest.param(
            "version: 1\nversion: 1\nrules: []\n", "rules.yaml:2: key 'version' given twice", id="a key given twice"
        ),
        pytest.param("version: 2\nrules: []\n", "version: 1", id="a future format version is refused"),
        pytest.param("- just\n- a list\n", "version: 1", id="a top level that is not a mapping"),
        pytest.param(
            "version: 1\nrules:\n  - just a string\n",
            "rules[0]: each rule must be a mapping",
            id="a rule entry that is not a mapping",
        ),
    ],
)
def test_load_rules_unusable_document_raises_rules_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError, match=re.escape(message)) as caught:
        load_rules(path)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_load_rules_reads_a_file_with_a_bom_and_crlf_and_a_rule_repeated_word_for_word(tmp_path):
    path = tmp_path / "rules.yaml"
    text = "version: 1\nrules:\n" + GOOD_RULE + GOOD_RULE
    path.write_bytes(("\ufeff" + text.replace("\n", "\r\n")).encode("utf-8"))
    warnings: list[str] = []
    ruleset = load_rules(path, warnings)
    assert [r.name for r in ruleset.threshold] == ["many_ids"]
    assert warnings == [
        f"{path}:1: UTF-8 byte-order mark ignored",
        f"{path}: rules[1] (many_ids): repeats rule 'many_ids' word for word; read once",
    ]


def test_load_rules_reads_group_conditions_and_target_rules(tmp_path):
    path = _write(tmp_path, GOOD_RULE, CAMPAIGN + "    max_start_spread_hours: 6\n    min_distinct_watchlist: 5\n")
    path.write_text(
        path.read_text() + "targets:\n  - name: wide\n    description: d\n    severity: high\n    enabled: true\n"
        "    shadow: true\n    target_type: watchlist\n    metric: hit_entities\n    min_value: 8\n"
    )
    ruleset = load_rules(path)
    (split,) = ruleset.campaigns
    assert (split.link, split.start_gap_minutes, split.max_start_spread_hours) == ("user_agent_start", 30, 6)
    assert split.minimums() == {"n_members": 6, "disjointness": 0.8, "distinct_watchlist": 5}
    assert [(t.name, t.target_type, t.metric, t.min_value, t.shadow) for t in ruleset.targets] == [
        ("wide", "watchlist", "hit_entities", 8, True)
    ]


def test_load_rules_target_rule_on_an_unknown_metric_names_the_rule(tmp_path):
    path = _write(tmp_path, GOOD_RULE)
    path.write_text(
        path.read_text() + "targets:\n  - name: wide\n    description: d\n    severity: high\n    enabled: true\n"
        "    shadow: true\n    target_type: watchlist\n    metric: buyers\n    min_value: 8\n"
    )
    with pytest.raises(RulesError, match=r"\(wide\): target rules need"):
        load_rules(path)


def test_load_rules_missing_file_raises_rules_error(tmp_path):
    with pytest.raises(RulesError, match="cannot read rules"):
        load_rules(tmp_path / "absent.yaml")


def test_rules_docs_have_an_investigation_note_per_rule():
    docs = REPO_ROOT / "docs" / "rules.md"
    if not docs.exists():
        pytest.skip("docs/rules.md not written yet")
    # a section heading starts with the rule name, e.g. "## population_outlier (shadow)"
    headings = set(re.findall(r"^#+\s+`?(\w+)", docs.read_text(encoding="utf-8"), re.M))
    missing = [name for name in REQUIRED_RULES if name not in headings]
    assert not missing, f"docs/rules.md has no section for {missing}"
