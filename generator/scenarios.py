"""Who is in the synthetic traffic and what each of them looks up: the population behind generate.py.

The generator's job is to make enumeration detectors prove two things at once: that they catch
every attack pattern (bursts, slow drips, suffix brute force, naive scans, celebrity and name
sprays, account farms, a campaign spread over a /24), and that they leave alone the benign
traffic that resembles them (families checking six relatives, fans, carrier-grade NAT and
office NAT addresses, anonymous users, allowlisted verification partners). This module holds
that cast and its behaviour, so one file says what a detector must catch and what it must not
flag; generate.py only turns the resulting events into log lines and files.

Events are tuples `(ts_ms, actor, method, path, status, scenario)`. Each `Actor` carries its
JSON fragment (ip, client_id, device_id, user agent) pre-rendered, because the writer emits a
million lines and must not re-encode the same identity for each one. Benign volume scales with
`scale`; attack intensity does not, so the attacks stay detectable at any scale.
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

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
LOOKUP = "/api/v1/healthkit/lookup?"

ATTACK_SCENARIOS = (
    "burst_random_ids",
    "low_and_slow",
    "suffix_brute_force",
    "sequential_scan",
    "celebrity_spray",
    "name_only_spray",
    "account_farm",
    "distributed_campaign",
)
BENIGN_SCENARIOS = ("ordinary_citizen", "fan", "cgnat", "nat_office", "anonymous")
PARTNER_SCENARIO = "verification_partner"

# Volumes at scale 1.0 (benign, multiplied by scale) tuned for ~20k lines/day in total.
CITIZENS = 6_300
FANS = 150
CGNAT_CLIENTS_PER_IP = 300
OFFICE_EMPLOYEES = 60
ANONYMOUS = 300
PARTNER_LOOKUPS_PER_DAY = 3_000
BACKGROUND_PER_DAY = 6_000

REGIONS = (
    "110101",
    "110105",
    "110108",
    "120101",
    "210102",
    "310104",
    "310115",
    "320102",
    "330106",
    "350203",
    "370102",
    "420106",
    "430104",
    "440106",
    "440305",
    "500103",
    "510107",
    "610113",
)
SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡"
    "贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚华玉萍红玲芬燕彬鹏辉宇浩然子轩梓涵欣怡一诺"
    "雨桐晨博思远心月山立金文大小力石林嘉俊建国志梅佳琪婷雪峰海波晓东振宁慧颖"
)

# Fictional celebrities (invented names, not real people): name, region, birth date, sequence.
CELEBRITIES = (
    ("林星澜", "310104", "19880312", 271),
    ("顾辰逸", "110105", "19910724", 135),
    ("沈清歌", "330106", "19950218", 462),
    ("苏墨言", "320102", "19870905", 319),
    ("叶疏桐", "440305", "19990111", 88),
    ("陆云岫", "510107", "19931130", 604),
    ("温叙白", "350203", "19850616", 757),
    ("韩霁月", "210102", "19970403", 226),
    ("许南乔", "430104", "20000827", 940),
    ("程砚舟", "120101", "19820129", 511),
    ("秦朗月", "610113", "19940707", 372),
    ("萧北屿", "440106", "19960314", 19),
    ("宋知意", "370102", "20011009", 684),
    ("唐岑曦", "500103", "19891222", 203),
    ("夏予安", "420106", "19980530", 845),
    ("白景行", "110108", "19830808", 97),
    ("方静姝", "310115", "19920416", 158),
    ("贺星野", "110101", "20020101", 733),
    ("孟听澜", "330106", "19900925", 426),
    ("蒋沐阳", "440305", "19860302", 611),
    ("谢云帆", "510107", "19971118", 377),
    ("姚书瑶", "320102", "19930611", 248),
    ("傅砚川", "110105", "19840720", 519),
    ("季雨眠", "350203", "20000214", 866),
    ("黎望舒", "440106", "19950905", 302),
    ("邵青禾", "430104", "19991228", 148),
    ("乔语棠", "310104", "19960123", 590),
    ("钟慕白", "420106", "19881015", 41),
    ("严子衿", "370102", "19940301", 262),
    ("周屿森", "610113", "19910519", 915),
    ("杜若晴", "500103", "19970606", 470),
    ("楚嘉言", "120101", "19870211", 337),
    ("向晚棠", "210102", "20010717", 682),
    ("柏清和", "110108", "19850404", 159),
    ("俞思淼", "330106", "19981102", 804),
    ("郁景澄", "440305", "19921207", 573),
    ("凌霄羽", "510107", "19890826", 213),
    ("纪寒川", "320102", "19830114", 999),
    ("安以沫", "310115", "20020909", 624),
    ("裴星河", "110101", "19900310", 386),
)

APP_UAS = (
    "HealthKit/5.2.1 (iPhone; iOS 17.4.1; Scale/3.00)",
    "HealthKit/5.2.1 (iPhone; iOS 16.7.2; Scale/2.00)",
    "HealthKit/5.2.0 (Android 13; Xiaomi 2211133C)",
    "HealthKit/5.2.1 (Android 14; HUAWEI ALN-AL00)",
    "HealthKit/5.1.9 (Android 12; OPPO PGJM10)",
    "HealthKit/5.2.1 (Android 13; vivo V2241A)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Mobile/15E148 MicroMessenger/8.0.47(0x18002f2f) NetType/WIFI Language/zh_CN",
    "Mozilla/5.0 (Linux; Android 13; V2241A; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0"
    " Chrome/116.0.0.0 Mobile Safari/537.36 MicroMessenger/8.0.47.2560(0x28002F35) WeChat/arm64",
)
BROWSER_UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; M2012K11AC) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/120.0.6099.144 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.3 Mobile/15E148 Safari/604.1",
)
CAMPAIGN_UA = "Dalvik/2.1.0 (Linux; U; Android 7.1.2; SM-G9650 Build/N2G48H) hkq/0.9.3"
# Public-looking /16s for mobile and home users; the /24 campaign is drawn from elsewhere.
CITIZEN_NETS = ("36.112", "39.144", "111.30", "112.96", "117.136", "120.229", "183.14", "223.104")
CAMPAIGN_NETS = (45, 103, 185)

# Local (UTC+8) hour weights of consumer traffic; index = local hour.
_LOCAL_WEIGHTS = (2, 1, 1, 1, 1, 1, 2, 4, 7, 8, 8, 8, 7, 7, 8, 8, 8, 7, 7, 8, 9, 9, 7, 4)
CONSUMER_HOURS = tuple(h for h in range(24) for _ in range(_LOCAL_WEIGHTS[(h + 8) % 24]))
OFFICE_HOURS = tuple(h for h in range(24) if 9 <= (h + 8) % 24 < 18)
DAYTIME_HOURS = tuple(h for h in range(24) if 8 <= (h + 8) % 24 < 23)


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
    _ips: set[str] = field(default_factory=set)
    _ids: set[str] = field(default_factory=set)

    # ---- identities -------------------------------------------------------------------------
    def ip(self) -> str:
        """A fresh consumer IP, never handed out twice."""
        r = self.rng
        while True:
            ip = f"{r.choice(CITIZEN_NETS)}.{r.randrange(256)}.{r.randrange(1, 255)}"
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


def build_population(rng: random.Random, *, days: int, scale: float, start_ms: int) -> Population:
    """Create every actor, plan every attack and record labels and the allowlist."""
    pop = Population(rng, days, scale, start_ms)
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
