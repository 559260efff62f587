"""The hard group cases: campaigns in which no account crosses a per-account threshold, and their benign look-alikes.

A careful buyer of celebrities' data splits the work between dozens of fresh accounts on one
network and one client program, each looking up only a handful of people (one or two of them
celebrities), with no two accounts sharing a target. Only the group gives it away. Each benign
look-alike shares some of the group's links (a /24, a user agent, a device fingerprint, sessions
that start together) but not its behaviour: an office of long-lived accounts with overlapping
lookups, a fan club checking the same idol, families sharing a tablet, a school computer room.

Group sizes are drawn from the seed and do not depend on `scale`: like the other attacks, these
cases must stay equally hard at any volume of background traffic. Every member is labelled, plus
the link (campaign /24 or device) a detector would report the group under.
"""

from __future__ import annotations

from generator.population import Actor, Person, Population, celebrity_ids
from generator.vocabulary import (
    APP_UAS,
    CAMPAIGN_NETS,
    CELEBRITIES,
    DAY_MS,
    HOUR_MS,
    OFFICE_HOURS,
    OFFICE_UA,
    SCHOOL_UA,
    SELLER_UAS,
)

MINUTE_MS = 60_000


def plant_group_cases(pop: Population) -> None:
    """Plan the three below-threshold campaigns and the four benign look-alikes."""
    _split_campaign_subnet(pop)
    _split_campaign_spread(pop)
    _split_device_farm(pop)
    _office(pop)
    _fan_club(pop)
    _family_tablets(pop)
    _school_room(pop)


def _plan(pop: Population, ts: int, actor: Actor, path: str, status: int, scenario: str) -> None:
    day = (ts - pop.start_ms) // DAY_MS
    if not 0 <= day < pop.days:
        raise AssertionError(f"{scenario} event outside the generated days")
    pop.attack_events.setdefault(day, []).append((ts, actor, "GET", path, status, scenario))


def _net(pop: Population) -> str:
    """A fresh /24 (as 'a.b.c') outside the consumer networks."""
    while True:
        net = f"{pop.rng.choice(CAMPAIGN_NETS)}.{pop.rng.randrange(256)}.{pop.rng.randrange(256)}"
        if net not in pop.nets:
            pop.nets.add(net)
            return net


def _start(pop: Population, day: int | None = None, span_minutes: int = 120) -> int:
    """A start instant on a random (or given) day, leaving `span_minutes` before midnight."""
    day = pop.rng.randrange(pop.days) if day is None else day
    return pop.start_ms + day * DAY_MS + pop.rng.randrange(DAY_MS - span_minutes * MINUTE_MS)


def _bought_list(pop: Population, n_accounts: int) -> list[list[Person]]:
    """One target list split between accounts: 3-5 people each, one or two of them celebrities, no overlap."""
    r = pop.rng
    real = celebrity_ids()
    celebs = [Person(real[c[0]], c[0]) for c in r.sample(CELEBRITIES, len(CELEBRITIES))]
    slices = []
    for i in range(n_accounts):
        mine = [celebs[i % len(celebs)]]
        if i + n_accounts < len(celebs) and r.random() < 0.5:
            mine.append(celebs[i + n_accounts])
        mine += [pop.person() for _ in range(r.randint(3, 5) - len(mine))]
        slices.append(mine)
    return slices


def _work_slice(pop: Population, actor: Actor, people: list[Person], t0: int, scenario: str) -> None:
    """One member's short session: each of its people once or twice (a retry), data returned."""
    r = pop.rng
    ts = t0
    for p in people:
        for _ in range(2 if r.random() < 0.2 else 1):
            ts += r.randrange(5_000, 90_000)
            _plan(pop, ts, actor, p.full, 200, scenario)


def _split_campaign_subnet(pop: Population) -> None:
    sc, r = "split_campaign_subnet", pop.rng
    net, n = _net(pop), r.randint(14, 24)
    ua = SELLER_UAS[0]
    pop.label(
        "campaign",
        f"{net}.0/24",
        "attack",
        sc,
        f"{n} fresh accounts on one /24 with one user agent, 3-5 disjoint targets each, 1-2 of them celebrities",
    )
    t0 = _start(pop)
    for i, (host, people) in enumerate(zip(r.sample(range(2, 255), n), _bought_list(pop, n), strict=True)):
        a = Actor(f"{net}.{host}", pop.client_id(), pop.device_id(), ua)
        pop.label("client_id", a.client_id, "attack", sc, f"member {i + 1} of {n} on {net}.0/24, below every threshold")
        _work_slice(pop, a, people, t0 + r.randrange(20 * MINUTE_MS), sc)


def _split_campaign_spread(pop: Population) -> None:
    sc, r = "split_campaign_spread", pop.rng
    nets = [_net(pop) for _ in range(r.randint(4, 6))]
    sizes = [r.randint(3, 5) for _ in nets]
    n, ua, t0 = sum(sizes), SELLER_UAS[1], _start(pop)
    slices = iter(_bought_list(pop, n))
    for net, size in zip(nets, sizes, strict=True):
        for host in r.sample(range(2, 255), size):
            a = Actor(f"{net}.{host}", pop.client_id(), pop.device_id(), ua)
            pop.label(
                "client_id",
                a.client_id,
                "attack",
                sc,
                f"one of {n} accounts over {len(nets)} /24s sharing a user agent and a start time ({net}.0/24)",
            )
            _work_slice(pop, a, next(slices), t0 + r.randrange(20 * MINUTE_MS), sc)


def _split_device_farm(pop: Population) -> None:
    sc, r = "split_device_farm", pop.rng
    device, n, ua = pop.device_id(), r.randint(7, 9), APP_UAS[4]
    pop.label(
        "campaign", device, "attack", sc, f"{n} fresh accounts on one device, 3-5 disjoint targets each (under 50 IDs)"
    )
    t0 = _start(pop)
    for i, people in enumerate(_bought_list(pop, n)):
        a = Actor(pop.ip(), pop.client_id(), device, ua)
        pop.label("client_id", a.client_id, "attack", sc, f"member {i + 1} of {n} on device {device}")
        _work_slice(pop, a, people, t0 + r.randrange(40 * MINUTE_MS), sc)


# ---- benign look-alikes ---------------------------------------------------------------------------
def _family(pop: Population, size: int) -> list[Person]:
    me = pop.person()
    return [me] + [pop.person(me.name[0], me.id_number[:6]) for _ in range(size - 1)]


def _office(pop: Population) -> None:
    """Long-lived accounts behind one NAT /24 and one managed browser; own families plus a shared HR list."""
    sc, r = "office", pop.rng
    net, n = _net(pop), 30
    ips = [f"{net}.{h}" for h in r.sample(range(2, 255), 2)]
    pop.label("campaign", f"{net}.0/24", "benign", sc, f"office NAT /24: {n} long-lived employees, one managed browser")
    shared = _family(pop, 6)  # the people HR checks: colleagues' records, looked up by several employees
    idol = celebrity_ids()
    star = r.choice(CELEBRITIES)[0]
    for i in range(n):
        a = Actor(r.choice(ips), pop.client_id(), pop.device_id(), OFFICE_UA)
        pop.label("client_id", a.client_id, "benign", sc, "office employee: own family and a shared list")
        people = _family(pop, r.randint(1, 4)) + (r.sample(shared, 3) if i % 3 == 0 else [])
        if i % 10 == 1:
            people.append(Person(idol[star], star))
        for day in range(pop.days):
            if r.random() < 0.7:
                for p in r.sample(people, min(len(people), r.randint(1, 3))):
                    _plan(pop, pop.ts(day, OFFICE_HOURS), a, p.full, 200, sc)


def _fan_club(pop: Population) -> None:
    """A fan meeting on a venue's Wi-Fi: fresh accounts, one app, one start, every member checking one idol."""
    sc, r = "fan_club", pop.rng
    net, n = _net(pop), 25
    name = r.choice(CELEBRITIES)[0]
    idol = Person(celebrity_ids()[name], name)
    pop.label("campaign", f"{net}.0/24", "benign", sc, f"fan club: {n} fresh accounts on venue Wi-Fi checking one idol")
    t0 = _start(pop)
    for _ in range(n):
        a = Actor(f"{net}.{r.randint(2, 4)}", pop.client_id(), pop.device_id(), APP_UAS[6])
        pop.label("client_id", a.client_id, "benign", sc, "fan club member checking the club's idol")
        ts = t0 + r.randrange(20 * MINUTE_MS)
        people = [idol] * r.randint(2, 5) + ([pop.person()] if r.random() < 0.3 else [])
        for p in people:
            ts += r.randrange(5_000, 120_000)
            _plan(pop, ts, a, p.full, 200, sc)


def _family_tablets(pop: Population) -> None:
    """Households whose 2-4 accounts share one tablet and check the same relatives."""
    sc, r = "family_tablet", pop.rng
    for _ in range(3):
        device, ip, n = pop.device_id(), pop.ip(), r.randint(2, 4)
        relatives = _family(pop, r.randint(3, 6))
        pop.label("campaign", device, "benign", sc, f"family tablet shared by {n} accounts checking the same relatives")
        for _ in range(n):
            a = Actor(ip, pop.client_id(), device, APP_UAS[0])
            pop.label("client_id", a.client_id, "benign", sc, f"family account on tablet {device}")
            for day in range(pop.days):
                if r.random() < 0.5:
                    for p in r.sample(relatives, r.randint(1, len(relatives))):
                        _plan(pop, pop.ts(day, OFFICE_HOURS), a, p.full, 200, sc)


def _school_room(pop: Population) -> None:
    """A computer room: identical PCs (one fingerprint), one NAT, one browser; a class a day logs in together."""
    sc, r = "school_room", pop.rng
    net, device = _net(pop), pop.device_id()
    ip = f"{net}.{r.randrange(2, 255)}"
    name = r.choice(CELEBRITIES)[0]
    idol = Person(celebrity_ids()[name], name)
    pop.label("campaign", f"{net}.0/24", "benign", sc, "school computer room: one NAT, one browser build")
    pop.label("campaign", device, "benign", sc, "school computer room: identical PCs share one fingerprint")
    for day in range(pop.days):
        lesson = pop.start_ms + day * DAY_MS + 2 * HOUR_MS  # 10:00 local
        for i in range(30):
            a = Actor(ip, pop.client_id(), device, SCHOOL_UA)
            pop.label("client_id", a.client_id, "benign", sc, f"student in the class of day {day + 1}")
            me = pop.person()
            people = [me] + ([pop.person(me.name[0], me.id_number[:6])] if r.random() < 0.4 else [])
            if i < 3:
                people.append(idol)
            ts = lesson + r.randrange(10 * MINUTE_MS)
            for p in people:
                ts += r.randrange(10_000, 180_000)
                _plan(pop, ts, a, p.full, 200, sc)
