"""The people and actors of the synthetic traffic, and the per-day benign behaviour of the population.

Events are tuples `(ts_ms, actor, method, path, status, scenario)`. Each `Actor` carries its JSON
fragment (ip, client_id, device_id, user agent) pre-rendered, because the writer emits a million
lines and must not re-encode the same identity for each one.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import unicodedata
from dataclasses import dataclass, field
from functools import cache, lru_cache
from urllib.parse import quote, quote_plus

from core.idnumber import check_char, is_valid, make_id
from generator.vocabulary import (
    APP_UAS,
    BACKGROUND_PER_DAY,
    CELEBRITIES,
    CITIZEN_NETS,
    CONSUMER_HOURS,
    DAY_MS,
    DAYTIME_HOURS,
    GIVEN,
    HOUR_MS,
    LOOKUP,
    MORE_CITIZEN_NETS,
    PARTNER_LOOKUPS_PER_DAY,
    PARTNER_SCENARIO,
    REGIONS,
    SURNAMES,
)

ALL_CITIZEN_NETS = CITIZEN_NETS + MORE_CITIZEN_NETS
_ADDRESSES_PER_NET = 256 * 254  # a /16 less each /24's .0 and .255


@lru_cache(maxsize=1)
def _birth_dates() -> tuple[str, ...]:
    """Every YYYYMMDD from 1950-01-01 to 2015-12-31."""
    d, end, out = dt.date(1950, 1, 1), dt.date(2015, 12, 31), []
    while d <= end:
        out.append(f"{d.year:04d}{d.month:02d}{d.day:02d}")
        d += dt.timedelta(days=1)
    return tuple(out)


@lru_cache(maxsize=1)
def _compat_forms() -> dict[str, str]:
    """Kangxi radicals / compatibility ideographs that NFKC folds onto a common name character."""
    forms: dict[str, str] = {}
    for cp in [*range(0x2F00, 0x2FD6), *range(0xF900, 0xFB00)]:
        folded = unicodedata.normalize("NFKC", chr(cp))
        if len(folded) == 1 and folded != chr(cp):
            forms.setdefault(folded, chr(cp))
    return forms


@cache
def _qchar(ch: str) -> str:
    return quote(ch, safe="")


def _q(name: str) -> str:
    """quote(name, safe="") computed per character (names reuse a small alphabet)."""
    return "".join(map(_qchar, name))


def lookup_path(id_number: str | None, name: str | None, plus: bool = False) -> str:
    """The lookup URL for an ID and/or a name, the name percent-encoded (quote_plus if `plus`)."""
    parts = []
    if id_number is not None:
        parts.append("id=" + id_number)
    if name is not None:
        parts.append("name=" + (quote_plus(name, safe="") if plus else _q(name)))
    return LOOKUP + "&".join(parts)


def celebrity_ids() -> dict[str, str]:
    """Each watchlist celebrity's name mapped to their (fixed, valid) ID number."""
    return {n: make_id(r, dt.date(int(b[:4]), int(b[4:6]), int(b[6:])), s) for n, r, b, s in CELEBRITIES}


class Actor:
    """One identity on the wire (ip + optional client_id/device_id + UA), its JSON pre-rendered."""

    __slots__ = ("client_ip", "client_id", "device_id", "user_agent", "frag", "frag_no_ua")

    def __init__(self, client_ip: str, client_id: str | None, device_id: str | None, user_agent: str):
        self.client_ip, self.client_id, self.device_id, self.user_agent = client_ip, client_id, device_id, user_agent
        head = f'"client_ip":{json.dumps(client_ip)}'
        if client_id is not None:
            head += f',"client_id":{json.dumps(client_id)}'
        if device_id is not None:
            head += f',"device_id":{json.dumps(device_id)}'
        self.frag_no_ua = head
        self.frag = head + f',"user_agent":{json.dumps(user_agent)}'


class Person:
    """A real (ID, name) pair the API would answer 200 for, with its usual lookup URL cached."""

    __slots__ = ("id_number", "name", "full")

    def __init__(self, id_number: str, name: str):
        self.id_number, self.name = id_number, name
        self.full = lookup_path(id_number, name)

    @property
    def id_only(self) -> str:
        """The lookup URL with the ID alone."""
        return lookup_path(self.id_number, None)


@dataclass
class Household:
    """A citizen-like actor (ordinary, CGNAT or office) and the 1-6 people they look up."""

    actor: Actor
    people: list[Person]
    scenario: str
    hours: tuple[int, ...]
    p_active: float
    careful: bool = False  # no typos, so a labelled "six relatives" case has exactly 6 distinct IDs


@dataclass
class Population:
    """Everything planted for one run: actors, their per-day behaviour, labels and the allowlist."""

    rng: random.Random
    days: int
    scale: float
    start_ms: int
    households: list[Household] = field(default_factory=list)
    fans: list[tuple[Actor, Person, int]] = field(default_factory=list)  # actor, target, status
    anonymous: list[tuple[Actor, list[Person], frozenset[int]]] = field(default_factory=list)
    partners: list[Actor] = field(default_factory=list)
    background: list[Actor] = field(default_factory=list)
    attack_events: dict[int, list[tuple]] = field(default_factory=dict)
    labels: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    allowlist: list[tuple[str, str, str, str]] = field(default_factory=list)
    nets: set[str] = field(default_factory=set)  # /24s handed to planted groups, each used once
    _ips: set[str] = field(default_factory=set)
    _ids: set[str] = field(default_factory=set)

    # ---- identities -------------------------------------------------------------------------
    def ip(self) -> str:
        """A fresh consumer IP, never handed out twice.

        Drawing at random and retrying on a repeat stays cheap while the pool is at most half used;
        past that the pool widens, and it refuses (rather than loop for ever) before it runs out.
        """
        r, used = self.rng, len(self._ips)
        nets = CITIZEN_NETS if used < _ADDRESSES_PER_NET * len(CITIZEN_NETS) // 2 else ALL_CITIZEN_NETS
        if used >= _ADDRESSES_PER_NET * len(ALL_CITIZEN_NETS) // 2:
            raise ValueError(f"--scale {self.scale:g} needs more than {used:,} consumer addresses: use a smaller scale")
        while True:
            ip = f"{r.choice(nets)}.{r.randrange(256)}.{r.randrange(1, 255)}"
            if ip not in self._ips:
                self._ips.add(ip)
                return ip

    def client_id(self) -> str:
        """A fresh account id."""
        while True:
            cid = f"u{self.rng.randrange(10**9):09d}"
            if cid not in self._ids:
                self._ids.add(cid)
                return cid

    def device_id(self) -> str:
        """A fresh 16-hex device fingerprint."""
        return f"{self.rng.getrandbits(64):016x}"

    def actor(self, ip: str | None = None, ua: str | None = None, anonymous: bool = False) -> Actor:
        """A new app user: own client_id and device unless anonymous, own IP unless given one."""
        ua = ua or self.rng.choice(APP_UAS)
        if anonymous:
            return Actor(ip or self.ip(), None, None, ua)
        return Actor(ip or self.ip(), self.client_id(), self.device_id(), ua)

    def random_id(self, region: str | None = None) -> str:
        """A valid ID with a random region, birth date (1950-2015) and sequence."""
        rnd, dates = self.rng.random, _birth_dates()
        region = region or REGIONS[int(rnd() * len(REGIONS))]
        first17 = f"{region}{dates[int(rnd() * len(dates))]}{int(rnd() * 1000):03d}"
        return first17 + check_char(first17)

    def random_name(self, surname: str | None = None) -> str:
        """A 2-3 character name from common surnames and given-name characters."""
        rnd, n = self.rng.random, len(GIVEN)
        given = GIVEN[int(rnd() * n)] + (GIVEN[int(rnd() * n)] if rnd() < 0.65 else "")
        return (surname or SURNAMES[int(rnd() * len(SURNAMES))]) + given

    def person(self, surname: str | None = None, region: str | None = None) -> Person:
        """A new real person."""
        return Person(self.random_id(region), self.random_name(surname))

    def label(self, etype: str, value: str, label: str, scenario: str, description: str) -> None:
        """Record one ground-truth row for labels.csv."""
        self.labels.append((etype, value, label, scenario, description))

    # ---- per-lookup variation ---------------------------------------------------------------
    def name_variant(self, name: str) -> tuple[str, bool]:
        """The name as a client might send it: padded, full-width-spaced or in a compatibility form."""
        r = self.rng.random()
        if r < 0.35:
            return (" " + name if r < 0.17 else name + " "), r < 0.28
        if r < 0.6:
            return "\u3000" + name + ("\u3000" if r < 0.5 else ""), False
        forms = _compat_forms()
        for i, ch in enumerate(name):
            if ch in forms:
                return name[:i] + forms[ch] + name[i + 1 :], self.rng.random() < 0.5
        return " " + name + " ", True

    def citizen_lookup(self, p: Person, careful: bool) -> tuple[str, int]:
        """One lookup of a real person by a benign user: mostly plain, sometimes sloppy."""
        r = self.rng.random()
        if r < 0.84:
            return p.full, 200
        if r < 0.91:
            return p.id_only, 200
        if r < 0.95:
            idn = p.id_number.lower() if p.id_number.endswith("X") and r < 0.93 else p.id_number
            name, plus = self.name_variant(p.name)
            return lookup_path(idn, name, plus), 200
        if r < 0.965:
            return lookup_path(None, p.name, r < 0.955), 200
        if careful:
            return p.full, 200
        if r < 0.985:  # mistyped digit: almost always breaks the checksum
            i = self.rng.randrange(17)
            d = str((int(p.id_number[i]) + self.rng.randrange(1, 10)) % 10)
            bad = p.id_number[:i] + d + p.id_number[i + 1 :]
            return lookup_path(bad, p.name), (404 if is_valid(bad) else 400)
        return lookup_path(p.id_number, p.name[:-1] + self.rng.choice(GIVEN)), 404

    def ts(self, day: int, hours: tuple[int, ...]) -> int:
        """A random instant on `day` in one of `hours` (UTC), epoch ms."""
        rnd = self.rng.random
        return self.start_ms + day * DAY_MS + hours[int(rnd() * len(hours))] * HOUR_MS + int(rnd() * HOUR_MS)

    # ---- one day of events ------------------------------------------------------------------
    def day_events(self, day: int) -> list[tuple]:
        """All well-formed events of day `day` (unsorted): benign, partners, attacks, background."""
        r, rnd, ev = self.rng, self.rng.random, []
        add, base = ev.append, self.start_ms + day * DAY_MS
        for h in self.households:
            if h.careful and day == 0:  # a labelled six-relatives check: everyone, by ID and name, on day one
                for p in h.people:
                    add((self.ts(day, h.hours), h.actor, "GET", p.full, 200, h.scenario))
            elif rnd() >= h.p_active:
                continue
            people, hours = h.people, h.hours
            for _ in range(1 + int(rnd() * rnd() * 4)):
                p = people[int(rnd() * len(people))]
                for _ in range(2 if rnd() < 0.25 else 1):
                    path, status = self.citizen_lookup(p, h.careful)
                    ts = base + hours[int(rnd() * len(hours))] * HOUR_MS + int(rnd() * HOUR_MS)
                    add((ts, h.actor, "GET", path, status, h.scenario))
        for i, (a, p, status) in enumerate(self.fans):
            if i >= 5 and rnd() >= 0.8:  # the labelled fans look every day
                continue
            for _ in range(r.randint(2, 6)):
                if rnd() < 0.1:
                    name, plus = self.name_variant(p.name)
                    path = lookup_path(p.id_number, name, plus)
                else:
                    path = p.full
                add((self.ts(day, CONSUMER_HOURS), a, "GET", path, status, "fan"))
        for a, people, active in self.anonymous:
            if day in active:
                for _ in range(r.randint(1, 3)):
                    path, status = self.citizen_lookup(r.choice(people), False)
                    add((self.ts(day, CONSUMER_HOURS), a, "GET", path, status, "anonymous"))
        n, hours = max(50, round(PARTNER_LOOKUPS_PER_DAY * self.scale)), DAYTIME_HOURS
        for a in self.partners:
            path = lookup_path(self.random_id(), self.random_name())
            for _ in range(n):
                if rnd() >= 0.04:  # else: the same person again
                    path = lookup_path(self.random_id(), self.random_name())
                ts = base + hours[int(rnd() * len(hours))] * HOUR_MS + int(rnd() * HOUR_MS)
                add((ts, a, "GET", path, 200 if rnd() < 0.9 else 404, PARTNER_SCENARIO))
        ev.extend(self.attack_events.get(day, ()))
        self._background(day, ev)
        return ev

    def _background(self, day: int, ev: list[tuple]) -> None:
        r, rnd, add, pool = self.rng, self.rng.random, ev.append, self.background
        base, hours = self.start_ms + day * DAY_MS, CONSUMER_HOURS
        for _ in range(round(BACKGROUND_PER_DAY * self.scale)):
            a = pool[int(rnd() * len(pool))]
            x = rnd()
            method = "GET"
            if x < 0.33:
                path, status = "/api/v1/healthkit/me", (200 if a.client_id and x < 0.3 else 401)
            elif x < 0.53:
                path, status = "/static/app.js", (200 if x < 0.45 else 304)
            elif x < 0.61:
                path, status = "/static/app.css", (200 if x < 0.57 else 304)
            elif x < 0.75:
                path = f"/api/v1/healthkit/report/{r.getrandbits(128):032x}"
                path = f"{path[:-24]}-{path[-24:-20]}-{path[-20:-16]}-{path[-16:-12]}-{path[-12:]}"
                status = 200 if x < 0.72 else 404
            elif x < 0.83:
                path, status = "/api/v1/healthkit/config", (200 if x < 0.825 else 503)
            elif x < 0.87:
                path, status = "/favicon.ico", (200 if x < 0.86 else 404)
            elif x < 0.95:
                method, path = "POST", "/api/v1/auth/refresh"
                status = 200 if a.client_id and x < 0.93 else 401
            else:
                path, status = f"/api/v1/healthkit/notices?page={r.randint(1, 5)}", (200 if x < 0.995 else 500)
            ts = base + hours[int(rnd() * len(hours))] * HOUR_MS + int(rnd() * HOUR_MS)
            add((ts, a, method, path, status, "background"))
