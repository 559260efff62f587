"""Who is in the synthetic traffic and what each of them looks up: the population behind generate.py.

The generator's job is to make enumeration detectors prove two things at once: that they catch
every attack pattern (bursts, slow drips, suffix brute force, naive scans, celebrity and name
sprays, account farms, a campaign spread over a /24), and that they leave alone the benign
traffic that resembles them (families checking six relatives, fans, carrier-grade NAT and
office NAT addresses, anonymous users, allowlisted verification partners). The group cases
(campaigns below every per-account threshold and their benign look-alikes) are in `campaigns`.
This module holds
that cast and its behaviour, so one file says what a detector must catch and what it must not
flag; generate.py only turns the resulting events into log lines and files.

Benign volume scales with `scale`; attack intensity does not, so the attacks stay detectable at any
scale. The cast itself (people, actors, their daily habits) is in `population`, its vocabulary in
`vocabulary`.
"""

from __future__ import annotations

import datetime as dt
import random

from core.idnumber import check_char, is_valid
from generator.campaigns import plant_group_cases
from generator.population import (
    Actor,
    Household,
    Person,
    Population,
    celebrity_ids,
    lookup_path,
)
from generator.vocabulary import (
    ANONYMOUS,
    APP_UAS,
    BROWSER_UAS,
    CAMPAIGN_NETS,
    CAMPAIGN_UA,
    CELEBRITIES,
    CGNAT_CLIENTS_PER_IP,
    CITIZENS,
    CONSUMER_HOURS,
    DAY_MS,
    DAYTIME_HOURS,
    FANS,
    OFFICE_EMPLOYEES,
    OFFICE_HOURS,
    PARTNER_LOOKUPS_PER_DAY,
    PARTNER_SCENARIO,
)


def build_population(rng: random.Random, *, days: int, scale: float, start_ms: int) -> Population:
    """Create every actor, plan every attack and record labels and the allowlist."""
    pop = Population(rng, days, scale, start_ms)
    plant_group_cases(pop)  # first, so their sizes depend on the seed alone, not on the scale
    _benign(pop)
    _partners(pop)
    _attacks(pop)
    return pop


def _household(
    pop: Population, actor: Actor, scenario: str, hours: tuple[int, ...], size: int | None = None, careful: bool = False
) -> Household:
    r = pop.rng
    if size is None:
        size = r.choices((1, 2, 3, 4, 5, 6), (30, 25, 20, 12, 8, 5))[0]
    me = pop.person()
    people = [me]
    for _ in range(size - 1):
        region = me.id_number[:6] if r.random() < 0.7 else None
        people.append(pop.person(me.name[0] if r.random() < 0.6 else None, region))
    return Household(actor, people, scenario, hours, 0.45, careful)


def _benign(pop: Population) -> None:
    r, s = pop.rng, pop.scale
    for i in range(max(20, round(CITIZENS * s))):
        hh = _household(pop, pop.actor(), "ordinary_citizen", CONSUMER_HOURS, 6 if i < 5 else None, i < 5)
        pop.households.append(hh)
        if i < 5:
            pop.label(
                "client_id",
                hh.actor.client_id,
                "benign",
                "ordinary_citizen",
                "family member checks six relatives (exactly 6 distinct valid IDs, repeat lookups)",
            )
    for _ in range(2):
        ip = pop.ip()
        n = max(40, round(CGNAT_CLIENTS_PER_IP * s))
        for _ in range(n):
            pop.households.append(_household(pop, pop.actor(ip=ip), "cgnat", CONSUMER_HOURS))
        pop.label("client_ip", ip, "benign", "cgnat", f"carrier-grade NAT address shared by {n} ordinary app users")
    ip, n = pop.ip(), max(20, round(OFFICE_EMPLOYEES * s))
    for _ in range(n):
        pop.households.append(_household(pop, pop.actor(ip=ip), "nat_office", OFFICE_HOURS))
    pop.label("client_ip", ip, "benign", "nat_office", f"office NAT address with {n} employees, office hours")
    celebs = celebrity_ids()
    for i in range(max(5, round(FANS * s))):
        name, _, _, seq = CELEBRITIES[r.randrange(len(CELEBRITIES))]
        real = celebs[name]
        if r.random() < 0.25:
            target, status = Person(real, name), 200
        else:  # a rumoured ID: the right prefix, a wrong (but checksum-valid) sequence number
            rumour = real[:14] + f"{(seq + r.randint(1, 998)) % 1000:03d}"
            target, status = Person(rumour + check_char(rumour), name), 404
        a = pop.actor()
        pop.fans.append((a, target, status))
        if i < 5:
            pop.label(
                "client_id",
                a.client_id,
                "benign",
                "fan",
                "fan looking up one watchlist celebrity a handful of times a day "
                f"({'real ID, hits' if status == 200 else 'rumoured ID, misses'})",
            )
    for i in range(max(5, round(ANONYMOUS * s))):
        a = pop.actor(ua=r.choice(BROWSER_UAS), anonymous=True)
        me = pop.person()
        people = [me] + [pop.person(me.name[0]) for _ in range(r.randint(0, 2))]
        active = frozenset(r.sample(range(pop.days), min(pop.days, r.randint(1, 2))))
        if i < 5:
            active = frozenset({0})
            pop.label(
                "client_ip",
                a.client_ip,
                "benign",
                "anonymous",
                f"anonymous web user (no client_id/device_id) looking up 1-{len(people)} ID(s) once",
            )
        pop.anonymous.append((a, people, active))
    pop.background = [h.actor for h in pop.households] + [f[0] for f in pop.fans] + [a[0] for a in pop.anonymous]


def _partners(pop: Population) -> None:
    r = pop.rng
    start = dt.datetime.fromtimestamp(pop.start_ms / 1000, dt.timezone.utc).date()
    expiries = ("", dt.date(start.year + 1, 12, 31).isoformat())
    for i in (1, 2):
        cid = f"partner-verify-{i:02d}"
        ip = f"121.40.{r.randrange(256)}.{r.randrange(1, 255)}"
        a = Actor(ip, cid, pop.device_id(), f"PartnerVerify/2.{i} (server; +https://partner{i}.example.cn)")
        pop.partners.append(a)
        n = max(50, round(PARTNER_LOOKUPS_PER_DAY * pop.scale))
        pop.label(
            "client_id",
            cid,
            "allowlisted",
            PARTNER_SCENARIO,
            f"contracted identity-verification partner, ~{n} distinct valid IDs per day, mostly hits",
        )
        pop.allowlist.append(("client_id", cid, f"contracted identity-verification partner {i}", expiries[i - 1]))


# ---- attacks: fixed intensity at every scale --------------------------------------------------
def _session(pop: Population, n: int, minutes: int, day: int | None = None) -> list[int]:
    """`n` ascending instants inside one `minutes`-long window that lies wholly within one day."""
    r = pop.rng
    day = r.randrange(pop.days) if day is None else day
    span = minutes * 60_000
    t0 = pop.start_ms + day * DAY_MS + int(r.random() * (DAY_MS - span))
    return sorted(t0 + int(r.random() * span) for _ in range(n))


def _emit(pop: Population, ts: int, actor: Actor, path: str, status: int, scenario: str) -> None:
    day = (ts - pop.start_ms) // DAY_MS
    if not 0 <= day < pop.days:
        raise AssertionError(f"{scenario} event outside the generated days")
    pop.attack_events.setdefault(day, []).append((ts, actor, "GET", path, status, scenario))


def _distinct_ids(pop: Population, n: int) -> list[str]:
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen[pop.random_id()] = None
    return list(seen)


def _attack(pop: Population, actor: Actor, scenario: str, description: str) -> Actor:
    pop.label("client_id", actor.client_id, "attack", scenario, description)
    return actor


def _attacks(pop: Population) -> None:
    r, rnd = pop.rng, pop.rng.random

    def miss(p_hit: float) -> int:  # mostly 404: random IDs rarely belong to the name sent
        return 200 if rnd() < p_hit else 404

    sc = "burst_random_ids"
    a = _attack(pop, pop.actor(ua="okhttp/4.9.3"), sc, "1500 random valid-checksum IDs within one hour")
    for ts, idn in zip(_session(pop, 1500, 55), _distinct_ids(pop, 1500), strict=True):
        _emit(pop, ts, a, lookup_path(idn, pop.random_name() if rnd() < 0.3 else None), miss(0.04), sc)

    sc = "low_and_slow"
    a = _attack(pop, pop.actor(), sc, "about 40 new random IDs every day, spread over daytime hours")
    for day in range(pop.days):
        for idn in _distinct_ids(pop, 40):
            _emit(pop, pop.ts(day, DAYTIME_HOURS), a, lookup_path(idn, pop.random_name()), miss(0.03), sc)

    sc = "suffix_brute_force"
    targets = r.sample(CELEBRITIES, 3)
    a = _attack(
        pop,
        pop.actor(),
        sc,
        "sequence numbers 000-999 with correct check chars under the birth "
        "prefix of 3 celebrities: " + ", ".join(t[0] for t in targets),
    )
    real = celebrity_ids()
    for name, *_ in targets:
        prefix = real[name][:14]
        for seq, ts in enumerate(_session(pop, 1000, 110)):
            first17 = f"{prefix}{seq:03d}"
            idn = first17 + check_char(first17)
            _emit(pop, ts, a, lookup_path(idn, name), 200 if idn == real[name] else 404, sc)

    sc = "sequential_scan"
    a = _attack(
        pop,
        pop.actor(ua="python-requests/2.31.0"),
        sc,
        "counts the last 4 characters up naively, so check characters are wrong (HTTP 400)",
    )
    prefix, n, sent = pop.random_id()[:14], r.randrange(1000, 8000), 0
    times = _session(pop, 800, 40)
    while sent < 800:
        idn, n = f"{prefix}{n:04d}", n + 1
        if not is_valid(idn):  # the rare accidental valid number is skipped: every request here is a 400
            _emit(pop, times[sent], a, lookup_path(idn, None), 400, sc)
            sent += 1

    sc = "celebrity_spray"
    a = _attack(pop, pop.actor(), sc, "30 watchlist celebrities looked up with their real (leaked) name+ID")
    pairs = [(n, real[n]) for n, *_ in r.sample(CELEBRITIES, 30)]
    pairs += r.sample(pairs, 15)
    for ts, (name, idn) in zip(_session(pop, len(pairs), 180), pairs, strict=True):
        if rnd() < 0.15:
            name, plus = pop.name_variant(name)
            _emit(pop, ts, a, lookup_path(idn, name, plus), 200, sc)
        else:
            _emit(pop, ts, a, lookup_path(idn, name), 200, sc)

    sc = "name_only_spray"
    a = _attack(pop, pop.actor(), sc, "500 distinct common names sent as name= only, no id")
    names: dict[str, None] = {}
    while len(names) < 500:
        names[pop.random_name()] = None
    sprayed = list(names) + r.sample(list(names), 20)
    for ts, name in zip(_session(pop, len(sprayed), 120), sprayed, strict=True):
        _emit(pop, ts, a, lookup_path(None, name), miss(0.35), sc)

    sc = "account_farm"
    device, ua = pop.device_id(), APP_UAS[2]
    pop.label(
        "campaign",
        device,
        "attack",
        sc,
        "account farm: one device_id behind 25 accounts, each looking up ~40 random IDs",
    )
    for _ in range(25):
        a = _attack(pop, Actor(pop.ip(), pop.client_id(), device, ua), sc, f"account on farm device {device}")
        for ts, idn in zip(_session(pop, 40, r.randint(30, 60)), _distinct_ids(pop, 40), strict=True):
            _emit(pop, ts, a, lookup_path(idn, pop.random_name()), miss(0.03), sc)

    sc = "distributed_campaign"
    net = f"{r.choice(CAMPAIGN_NETS)}.{r.randrange(256)}.{r.randrange(256)}"
    while net in pop.nets:
        net = f"{r.choice(CAMPAIGN_NETS)}.{r.randrange(256)}.{r.randrange(256)}"
    pop.nets.add(net)
    pop.label(
        "campaign",
        f"{net}.0/24",
        "attack",
        sc,
        "30 accounts on distinct IPs of one /24, one unusual user agent, disjoint slices of one ID list",
    )
    target_list = _distinct_ids(pop, 900)
    for i, host in enumerate(r.sample(range(2, 255), 30)):
        a = _attack(
            pop,
            Actor(f"{net}.{host}", pop.client_id(), pop.device_id(), CAMPAIGN_UA),
            sc,
            f"campaign member in {net}.0/24, slice {i + 1} of 30",
        )
        for ts, idn in zip(_session(pop, 30, 60), target_list[i * 30 : (i + 1) * 30], strict=False):
            _emit(pop, ts, a, lookup_path(idn, None), miss(0.05), sc)
