"""The traffic generator: deterministic output, full line accounting, and ground truth that matches the logs."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import ipaddress
import json
import random
import re
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from core.idnumber import is_valid
from generator import population
from generator.generate import generate, main
from generator.population import celebrity_ids

ATTACKS = {
    "burst_random_ids",
    "low_and_slow",
    "suffix_brute_force",
    "sequential_scan",
    "celebrity_spray",
    "name_only_spray",
    "account_farm",
    "distributed_campaign",
    "split_campaign_subnet",
    "split_campaign_spread",
    "split_device_farm",
}
GROUP_BENIGN = {"office", "fan_club", "family_tablet", "school_room"}
BENIGN = {"ordinary_citizen", "fan", "cgnat", "nat_office", "anonymous"} | GROUP_BENIGN
UTC = dt.timezone.utc
FILE_RE = re.compile(r"access-(\d{4}-\d{2}-\d{2})T(\d{2})\.jsonl\.gz$")


def parse_ts(value) -> dt.datetime:
    """The four encodings the generator uses; anything else raises ValueError."""
    if isinstance(value, int) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str) and value.isdigit():
        return dt.datetime.fromtimestamp(int(value) / 1000, UTC)
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|\+08:00)", value):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    raise ValueError(f"unparseable ts {value!r}")


def classify(line: str) -> str:
    """'event' for a well-formed record, else the malformed kind or 'blank'."""
    if not line.strip():
        return "blank"
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return "truncated"
    if isinstance(obj, list):
        return "json_array"
    if "status" not in obj:
        return "missing_status"
    if not isinstance(obj["status"], int):
        return "bad_status"
    try:
        parse_ts(obj["ts"])
    except ValueError:
        return "bad_ts"
    return "event"


class Run:
    """One generated data set, read back once."""

    def __init__(self, out: Path, summary: dict):
        self.out, self.summary = out, summary
        self.files = sorted((out / "logs").rglob("*.jsonl.gz"))
        self.raw: list[tuple[Path, str]] = []
        for f in self.files:
            with gzip.open(f, "rt", encoding="utf-8") as fh:
                self.raw += [(f, line.rstrip("\n")) for line in fh]
        self.events = [(f, json.loads(line)) for f, line in self.raw if classify(line) == "event"]
        with open(out / "labels.csv", encoding="utf-8", newline="") as fh:
            self.labels = list(csv.DictReader(fh))

    def members(self, scenario: str, label: str = "attack") -> set[str]:
        return {
            r["entity_value"]
            for r in self.labels
            if r["scenario"] == scenario and r["label"] == label and r["entity_type"] == "client_id"
        }

    def by_client(self, clients: set[str]) -> list[dict]:
        return [e for _, e in self.events if e.get("client_id") in clients]


def query(event: dict) -> dict[str, str]:
    parts = urlsplit(event["path"])
    if parts.path != "/api/v1/healthkit/lookup":
        return {}
    return {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}


def nfkc(name: str) -> str:
    return unicodedata.normalize("NFKC", name).strip()


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Run:
    out = tmp_path_factory.mktemp("small")
    return Run(out, generate(out, days=1, scale=0.05, seed=42))


@pytest.fixture(scope="module")
def three_days(tmp_path_factory) -> Run:
    out = tmp_path_factory.mktemp("three")
    return Run(out, generate(out, days=3, scale=0.05, seed=7, start=dt.date(2027, 2, 27)))


# ---- determinism and accounting ---------------------------------------------------------------


def test_same_seed_writes_identical_bytes_in_every_file(small, tmp_path):
    generate(tmp_path, days=1, scale=0.05, seed=42)
    ours = sorted(p.relative_to(small.out) for p in small.out.rglob("*") if p.is_file())
    again = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert ours == again
    for rel in ours:
        assert (small.out / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


def test_different_seed_writes_different_logs_and_labels(small, tmp_path):
    generate(tmp_path, days=1, scale=0.05, seed=43)
    rel = Path("logs/2026-11-01/access-2026-11-01T05.jsonl.gz")
    assert (small.out / rel).read_bytes() != (tmp_path / rel).read_bytes()
    assert (small.out / "labels.csv").read_text() != (tmp_path / "labels.csv").read_text()


@pytest.mark.parametrize("run", ["small", "three_days"])
def test_every_utc_hour_of_every_day_gets_a_file(run, request):
    r: Run = request.getfixturevalue(run)
    start = dt.date.fromisoformat(r.summary["start"])
    expected = {
        f"{start + dt.timedelta(days=d)}/access-{start + dt.timedelta(days=d)}T{h:02d}.jsonl.gz"
        for d in range(r.summary["days"])
        for h in range(24)
    }
    assert {f"{p.parent.name}/{p.name}" for p in r.files} == expected
    assert r.summary["files"] == len(expected)


@pytest.mark.parametrize("run", ["small", "three_days"])
def test_every_line_is_accounted_for_in_the_summary(run, request):
    r: Run = request.getfixturevalue(run)
    kinds = Counter(classify(line) for _, line in r.raw)
    s = r.summary
    assert len(r.raw) == s["total_lines"]
    assert kinds["event"] == s["event_lines"] == sum(s["scenario_lines"].values())
    assert kinds["blank"] == s["blank_lines"] >= 1
    assert {k: kinds[k] for k in s["malformed_lines"]} == s["malformed_lines"]
    assert all(n >= 1 for n in s["malformed_lines"].values())
    assert 0.001 < sum(s["malformed_lines"].values()) / s["total_lines"] < 0.01


def test_summary_json_is_the_returned_dict(small):
    assert json.loads((small.out / "summary.json").read_text(encoding="utf-8")) == small.summary
    assert {k: small.summary[k] for k in ("seed", "days", "scale", "start")} == {
        "seed": 42,
        "days": 1,
        "scale": 0.05,
        "start": "2026-11-01",
    }


def test_each_labelled_scenario_owns_exactly_its_counted_lines(small):
    for scenario in ATTACKS | {"verification_partner"}:
        label = "allowlisted" if scenario == "verification_partner" else "attack"
        lines = small.by_client(small.members(scenario, label))
        assert len(lines) == small.summary["scenario_lines"][scenario] > 0, scenario


# ---- labels, watchlist, allowlist --------------------------------------------------------------


def test_labels_cover_every_attack_scenario_and_every_benign_kind(small):
    by_label = defaultdict(set)
    for row in small.labels:
        by_label[row["label"]].add(row["scenario"])
    assert by_label["attack"] == ATTACKS
    assert by_label["benign"] == BENIGN
    assert by_label["allowlisted"] == {"verification_partner"}
    types = {(r["scenario"], r["entity_type"]) for r in small.labels}
    for scenario in ("cgnat", "nat_office", "anonymous"):
        assert (scenario, "client_ip") in types
    assert ("account_farm", "campaign") in types and ("distributed_campaign", "campaign") in types
    assert all(r["entity_type"] in {"client_id", "device_id", "client_ip", "campaign"} for r in small.labels)
    assert all(r["description"] for r in small.labels)


def test_labels_plant_a_few_of_each_hard_benign_case(small):
    counts = Counter((r["scenario"], r["entity_type"]) for r in small.labels if r["label"] == "benign")
    groups = {k: counts.pop(k) for k in list(counts) if k[0] in GROUP_BENIGN}
    assert groups == {
        ("office", "campaign"): 1,
        ("office", "client_id"): 30,
        ("fan_club", "campaign"): 1,
        ("fan_club", "client_id"): 25,
        ("family_tablet", "campaign"): 3,
        ("family_tablet", "client_id"): groups[("family_tablet", "client_id")],
        ("school_room", "campaign"): 2,
        ("school_room", "client_id"): 30,
    }
    assert 6 <= groups[("family_tablet", "client_id")] <= 12
    assert counts == {
        ("ordinary_citizen", "client_id"): 5,
        ("fan", "client_id"): 5,
        ("cgnat", "client_ip"): 2,
        ("nat_office", "client_ip"): 1,
        ("anonymous", "client_ip"): 5,
    }


def test_watchlist_csv_has_a_name_header_and_about_40_distinct_chinese_names(small):
    rows = list(csv.reader((small.out / "watchlist.csv").open(encoding="utf-8")))
    assert rows[0] == ["name"]
    names = [r[0] for r in rows[1:]]
    assert 35 <= len(names) == len(set(names)) <= 45
    assert all(2 <= len(n) <= 4 and all("\u4e00" <= c <= "\u9fff" for c in n) and nfkc(n) == n for n in names)


def test_allowlist_csv_lists_exactly_the_allowlisted_partners(small):
    rows = list(csv.reader((small.out / "allowlist.csv").open(encoding="utf-8")))
    assert rows[0] == ["entity_type", "entity_value", "reason", "expires"]
    partners = small.members("verification_partner", "allowlisted")
    assert {(r[0], r[1]) for r in rows[1:]} == {("client_id", c) for c in partners}
    assert len(rows) == 3
    for _, _, reason, expires in rows[1:]:
        assert reason
        assert expires == "" or dt.date.fromisoformat(expires) > dt.date(2026, 11, 1)


# ---- the events behind each label ---------------------------------------------------------------


def test_status_is_400_exactly_when_the_id_fails_the_checksum(small):
    checked = 0
    for _, e in small.events:
        q = query(e)
        if "id" in q:
            assert (e["status"] == 400) == (not is_valid(q["id"])), e
            checked += 1
    assert checked > 5000


def test_celebrity_ids_are_valid_and_fixed():
    ids = celebrity_ids()
    assert len(ids) == len(set(ids.values())) >= 35
    assert all(is_valid(i) for i in ids.values())
    assert ids == celebrity_ids()


def test_sequential_scan_ids_all_fail_the_checksum(small):
    lines = small.by_client(small.members("sequential_scan"))
    ids = [query(e)["id"] for e in lines]
    assert len(set(ids)) == len(ids) >= 750
    assert not any(is_valid(i) for i in ids)
    assert {e["status"] for e in lines} == {400}
    assert len({i[:14] for i in ids}) == 1  # one prefix, last four characters counted up


def test_burst_sends_about_1500_distinct_valid_ids_within_one_hour(small):
    lines = small.by_client(small.members("burst_random_ids"))
    ids = {query(e)["id"] for e in lines}
    times = [parse_ts(e["ts"]) for e in lines]
    assert len(ids) >= 1400 and all(is_valid(i) for i in ids)
    assert max(times) - min(times) <= dt.timedelta(hours=1)
    assert Counter(e["status"] for e in lines).most_common(1)[0][0] == 404


def test_low_and_slow_looks_up_about_40_new_ids_every_day(three_days):
    lines = three_days.by_client(three_days.members("low_and_slow"))
    per_day = defaultdict(set)
    for e in lines:
        per_day[parse_ts(e["ts"]).date()].add(query(e)["id"])
    assert sorted(per_day) == [dt.date(2027, 2, 27), dt.date(2027, 2, 28), dt.date(2027, 3, 1)]
    assert all(35 <= len(ids) <= 45 for ids in per_day.values())
    assert len(set().union(*per_day.values())) == sum(len(v) for v in per_day.values())


def test_suffix_brute_force_walks_every_sequence_under_celebrity_prefixes(small):
    lines = small.by_client(small.members("suffix_brute_force"))
    by_prefix = defaultdict(set)
    for e in lines:
        by_prefix[query(e)["id"][:14]].add(query(e)["id"])
    celeb = celebrity_ids()
    assert len(by_prefix) >= 3
    assert set(by_prefix) <= {i[:14] for i in celeb.values()}
    for _prefix, ids in by_prefix.items():
        assert {int(i[14:17]) for i in ids} == set(range(1000)) and all(is_valid(i) for i in ids)
    hits = [e for e in lines if e["status"] == 200]
    assert len(hits) == len(by_prefix) and {query(e)["id"] for e in hits} <= set(celeb.values())


def test_celebrity_spray_hits_about_30_distinct_watchlist_names(small):
    watch = {r[0] for r in csv.reader((small.out / "watchlist.csv").open(encoding="utf-8"))}
    lines = small.by_client(small.members("celebrity_spray"))
    names = {nfkc(query(e)["name"]) for e in lines}
    assert 25 <= len(names) <= 35 and names <= watch
    assert sum(e["status"] == 200 for e in lines) / len(lines) > 0.8


def test_name_only_spray_sends_about_500_distinct_names_and_no_id(small):
    lines = small.by_client(small.members("name_only_spray"))
    qs = [query(e) for e in lines]
    assert all(set(q) == {"name"} for q in qs)
    assert len({q["name"] for q in qs}) >= 450


def test_account_farm_members_share_the_campaign_device(small):
    device = {
        r["entity_value"] for r in small.labels if r["scenario"] == "account_farm" and r["entity_type"] == "campaign"
    }
    members = small.members("account_farm")
    assert len(device) == 1 and len(members) >= 20
    lines = small.by_client(members)
    assert {e["device_id"] for e in lines if "device_id" in e} == device
    per_client = defaultdict(set)
    for e in lines:
        per_client[e["client_id"]].add(query(e)["id"])
    assert set(per_client) == members and all(30 <= len(v) <= 50 for v in per_client.values())


def test_distributed_campaign_members_share_one_slash24_one_agent_and_split_the_targets(small):
    (net,) = {
        r["entity_value"]
        for r in small.labels
        if r["scenario"] == "distributed_campaign" and r["entity_type"] == "campaign"
    }
    network = ipaddress.ip_network(net)
    assert network.prefixlen == 24
    lines = small.by_client(small.members("distributed_campaign"))
    assert all(ipaddress.ip_address(e["client_ip"]) in network for e in lines)
    assert len({e["client_ip"] for e in lines}) >= 25
    assert len({e["user_agent"] for e in lines if "user_agent" in e}) == 1
    per_client = defaultdict(set)
    for e in lines:
        per_client[e["client_id"]].add(query(e)["id"])
    all_ids = [i for ids in per_client.values() for i in ids]
    assert len(all_ids) == len(set(all_ids))  # disjoint slices
    assert all(20 <= len(v) <= 40 for v in per_client.values())


def _slices(run: Run, scenario: str) -> dict[str, list[dict]]:
    by_client = defaultdict(list)
    for e in run.by_client(run.members(scenario)):
        by_client[e["client_id"]].append(e)
    return by_client


@pytest.mark.parametrize("scenario", ["split_campaign_subnet", "split_campaign_spread", "split_device_farm"])
@pytest.mark.parametrize("run", ["small", "three_days"])
def test_split_campaigns_stay_below_every_per_account_threshold_and_split_one_list(run, scenario, request):
    r: Run = request.getfixturevalue(run)
    celebs = set(celebrity_ids().values())
    slices = _slices(r, scenario)
    assert len(slices) >= 7
    targets = {c: {query(e)["id"] for e in lines} for c, lines in slices.items()}
    assert all(3 <= len(t) <= 5 and 1 <= len(t & celebs) <= 2 for t in targets.values()), targets
    everyone = [i for t in targets.values() for i in t]
    assert len(everyone) == len(set(everyone)), "members' targets overlap"
    assert all(e["status"] == 200 for lines in slices.values() for e in lines)
    starts = [min(parse_ts(e["ts"]) for e in lines) for lines in slices.values()]
    assert max(starts) - min(starts) <= dt.timedelta(minutes=45)
    agents = {e["user_agent"] for lines in slices.values() for e in lines if "user_agent" in e}
    nets = {e["client_ip"].rsplit(".", 1)[0] for lines in slices.values() for e in lines}
    devices = {e["device_id"] for lines in slices.values() for e in lines}
    if scenario == "split_campaign_subnet":
        assert len(agents) == 1 and len(nets) == 1
    elif scenario == "split_campaign_spread":
        assert len(agents) == 1 and 4 <= len(nets) <= 6
    else:
        assert len(devices) == 1 and len(everyone) < 50


def test_group_look_alikes_share_links_but_not_behaviour(three_days):
    r = three_days
    office = {c: r.by_client({c}) for c in r.members("office", "benign")}
    assert len({e["user_agent"] for lines in office.values() for e in lines if "user_agent" in e}) == 1
    assert sum(len({parse_ts(e["ts"]).date() for e in lines}) >= 2 for lines in office.values()) >= 20
    ids = Counter(i for lines in office.values() for i in {query(e)["id"] for e in lines})
    assert max(ids.values()) >= 3, "office lookups should overlap"
    club = [r.by_client({c}) for c in r.members("fan_club", "benign")]
    names = Counter(nfkc(query(e)["name"]) for lines in club for e in lines)
    assert names.most_common(1)[0][1] >= 50 and len({names.most_common(1)[0][0]}) == 1
    school = [r.by_client({c}) for c in r.members("school_room", "benign")]
    assert len(school) == 90 and len({e["device_id"] for lines in school for e in lines}) == 1
    assert all(len({query(e)["id"] for e in lines}) <= 3 for lines in school)
    tablets = defaultdict(set)
    for c in r.members("family_tablet", "benign"):
        for e in r.by_client({c}):
            tablets[e["device_id"]].add(c)
    assert len(tablets) == 3 and all(2 <= len(v) <= 4 for v in tablets.values())


def test_family_checkers_look_up_exactly_six_distinct_ids(small):
    for client in small.members("ordinary_citizen", "benign"):
        ids = {query(e)["id"].upper() for e in small.by_client({client}) if "id" in query(e)}
        assert len(ids) == 6 and all(is_valid(i) for i in ids), client


def test_fans_look_up_exactly_one_watchlist_celebrity(small):
    celeb = celebrity_ids()
    for client in small.members("fan", "benign"):
        qs = [query(e) for e in small.by_client({client}) if query(e)]
        assert 2 <= len(qs)
        assert len({nfkc(q["name"]) for q in qs}) == 1 and nfkc(qs[0]["name"]) in celeb
        assert len({q["id"] for q in qs}) == 1


def test_shared_addresses_carry_many_distinct_clients(small):
    for row in small.labels:
        if row["scenario"] in {"cgnat", "nat_office"}:
            clients = {e["client_id"] for _, e in small.events if e["client_ip"] == row["entity_value"]}
            assert len(clients) >= 10, row


def test_anonymous_users_send_no_client_or_device_id_and_few_ids(small):
    for row in small.labels:
        if row["scenario"] == "anonymous":
            lines = [e for _, e in small.events if e["client_ip"] == row["entity_value"]]
            assert lines and not any("client_id" in e or "device_id" in e for e in lines)
            assert len({query(e)["id"] for e in lines if is_valid(query(e).get("id", ""))}) <= 3


def test_consumer_addresses_widen_past_half_the_first_networks_and_never_repeat(monkeypatch):
    monkeypatch.setattr(population, "_ADDRESSES_PER_NET", 10)  # pool "half used" after 40 addresses
    pop = population.Population(random.Random(1), 1, 100.0, 0)
    ips = [pop.ip() for _ in range(150)]
    first = {ip.rsplit(".", 2)[0] for ip in ips[:40]}
    later = {ip.rsplit(".", 2)[0] for ip in ips[40:]}
    assert len(set(ips)) == 150
    assert first <= set(population.CITIZEN_NETS)
    assert later & set(population.MORE_CITIZEN_NETS)


def test_a_scale_beyond_the_address_pool_is_refused_by_name_instead_of_looping(monkeypatch):
    monkeypatch.setattr(population, "_ADDRESSES_PER_NET", 10)  # 32 networks: refused at 160
    pop = population.Population(random.Random(1), 1, 100.0, 0)
    for _ in range(160):
        pop.ip()
    with pytest.raises(ValueError, match="--scale 100 needs more than 160 consumer addresses"):
        pop.ip()


# ---- the shapes ingest must survive -------------------------------------------------------------


def test_timestamps_use_four_formats_and_land_in_their_utc_hour_file(small):
    formats = Counter()
    for f, e in small.events:
        ts = e["ts"]
        if isinstance(ts, int):
            formats["int"] += 1
        else:
            formats["digits" if ts.isdigit() else "+08:00" if ts.endswith("+08:00") else "Z"] += 1
        date, hour = FILE_RE.search(f.name).groups()
        assert parse_ts(ts).strftime("%Y-%m-%d %H") == f"{date} {hour}", (f.name, ts)
    assert set(formats) == {"Z", "+08:00", "int", "digits"}
    assert formats["Z"] > 0.7 * sum(formats.values())


def test_events_carry_required_fields_and_sometimes_unknown_ones(small):
    assert all({"ts", "client_ip", "path", "status"} <= set(e) for _, e in small.events)
    extra = Counter(k for _, e in small.events for k in e if k in {"upstream_addr", "x_forwarded_for"})
    assert extra["upstream_addr"] > 0 and extra["x_forwarded_for"] > 0
    assert sum("request_id" not in e for _, e in small.events) > 0


def test_lookup_names_are_percent_encoded_and_some_only_match_after_nfkc(small):
    paths = [e["path"] for _, e in small.events if "name=" in e["path"]]
    assert all(p.isascii() and " " not in p for p in paths)
    raw = [query({"path": p})["name"] for p in paths]
    assert sum(nfkc(n) != n for n in raw) >= 10
    assert any("name=+" in p or re.search(r"name=[^&]*\+$", p) for p in paths)  # quote_plus padding
    assert all(nfkc(n) for n in raw)


def test_some_truncated_lines_still_contain_an_id_number(small):
    cut = [line for _, line in small.raw if classify(line) == "truncated"]
    assert any(re.search(r"id=\d{17}[\dXx]", line) for line in cut)


def test_scale_multiplies_benign_volume_but_not_attacks(small, tmp_path):
    double = generate(tmp_path, days=1, scale=0.1, seed=42)["scenario_lines"]
    base = small.summary["scenario_lines"]
    for scenario in ATTACKS:
        assert double[scenario] == base[scenario], scenario
    assert double["background"] == 2 * base["background"]
    assert 1.5 < double["ordinary_citizen"] / base["ordinary_citizen"] < 2.6


@pytest.mark.parametrize(
    ("days", "scale"), [(0, 1.0), (1, 0.0), (1, -1.0)], ids=["zero-days", "zero-scale", "negative-scale"]
)
def test_generate_rejects_nonsense_arguments(tmp_path, days, scale):
    with pytest.raises(ValueError):
        generate(tmp_path, days=days, scale=scale)


def test_main_generates_and_prints_a_one_paragraph_summary(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--days", "1", "--scale", "0.05", "--seed", "3"]) == 0
    text = capsys.readouterr().out.strip()
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert "\n" not in text and f"{summary['total_lines']:,} lines" in text and "attack" in text
    assert summary["seed"] == 3
