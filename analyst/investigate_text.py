"""`enumwatch investigate` in a terminal: the findings of `investigate` as a few screens of text."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from analyst.investigate import MAX_LINKS
from analyst.near_misses import describe_near_misses
from analyst.report import describe


def fmt_time(value: datetime | None) -> str:
    """A UTC time to the minute, or - when there is none."""
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "-"


def plural(value: int, word: str) -> str:
    """'1 lookup', '2 lookups', '2 misses', '2 entities'."""
    if value == 1 or not word[-1].isalpha():
        return f"{value:,} {word}"
    if word.endswith("y"):
        return f"{value:,} {word[:-1]}ies"
    return f"{value:,} {word}{'es' if word.endswith('s') else 's'}"


def _bar(value: int, peak: int, width: int = 30) -> str:
    return "#" * max(1, round(width * value / peak)) if value and peak else ""


def who(found: dict) -> str:
    """The entity in a few words: type, value, and how many accounts a campaign has."""
    who = f"{found['entity_type']} {found['entity_value']}"
    if found["members"]:
        who += f" ({plural(len(found['members']), 'member account')})"
    return who


def _activity_lines(hours: list[dict]) -> list[str]:
    if not hours:
        return ["  no lookups"]
    if len(hours) > 72:  # a long-running entity: one line per day reads better
        days: dict = {}
        for h in hours:
            d = days.setdefault(h["hour"].date(), {"lookups": 0, "hits": 0, "new_ids": 0, "hours": 0})
            d["lookups"] += h["lookups"]
            d["hits"] += h["hits"]
            d["new_ids"] += h["new_ids"]
            d["hours"] += 1
        peak = max(d["lookups"] for d in days.values())
        lines = ["  per day (UTC; the hourly timeline is in --html):"]
        for day, d in sorted(days.items()):
            lines.append(
                f"  {day}  {d['lookups']:>7,} lookups  {d['new_ids']:>6,} new IDs  {d['hits']:>6,} hits  "
                f"{d['hours']:>2} active hours  {_bar(d['lookups'], peak)}"
            )
        return lines
    peak = max(h["lookups"] for h in hours)
    lines = ["  hour (UTC)         lookups  distinct IDs  names   hits  misses"]
    for h in hours:
        lines.append(
            f"  {h['hour']:%Y-%m-%d %H:00}  {h['lookups']:>8,}  {h['distinct_ids']:>12,}  {h['distinct_names']:>5,}  "
            f"{h['hits']:>5,}  {h['misses']:>6,}  {_bar(h['lookups'], peak)}"
        )
    return lines


def _related_lines(found: dict) -> list[str]:
    related = found["related"]
    lines = []
    labels = {"device": "same device", "ip": "same IP", "subnet": "same /24 (other IPs)"}
    for kind, label in labels.items():
        group = related[kind]
        if not group["total"]:
            lines.append(f"  {label}: none")
            continue
        more = f" (showing {len(group['entities'])})" if group["total"] > len(group["entities"]) else ""
        lines.append(f"  {label}: {plural(group['total'], 'entity')}{more}")
        for e in group["entities"]:
            flag = f"  [flagged {e['flagged']}]" if e["flagged"] else ""
            lines.append(
                f"    {e['entity_type']} {e['entity_value']}  via {', '.join(e['via'][:3])}  {plural(e['lookups'], 'lookup')}{flag}"
            )
    if related["truncated"]:
        lines.append(f"  (more than {MAX_LINKS} related entities: narrow down with enumwatch sql)")
    if not related["campaigns"]:
        lines.append("  same campaign: none in the latest detection run")
    for c in related["campaigns"]:
        flag = f"  [flagged {c['flagged']}]" if c["flagged"] else ""
        others = ", ".join(c["members"][:10]) + (" ..." if len(c["members"]) > 10 else "")
        lines.append(
            f"  same campaign: {c['rule']} via {c['link']} {c['link_value']}, {plural(c['n_members'], 'account')}{flag}: {others}"
        )
    return lines


def render_text(found: dict) -> str:
    """A readable summary: who, when, why flagged, what was targeted, who else is involved."""
    t = found["totals"]
    share = f"{t['hits'] / t['lookups']:.0%}" if t["lookups"] else "-"
    lines = [
        f"{who(found)}",
        f"  first seen {fmt_time(found['first_seen'])}, last seen {fmt_time(found['last_seen'])}",
        f"  {plural(t['lookups'], 'lookup')}, {plural(t['distinct_ids'], 'distinct ID')}, {plural(t['distinct_names'], 'distinct name')}, "
        f"{plural(t['hits'], 'hit')} (data returned, {share}), {plural(t['misses'], 'miss')}, {plural(t['invalid_ids'], 'invalid ID')}",
        f"  from {plural(t['n_devices'], 'device')}, {plural(t['n_ips'], 'IP')} in {plural(t['n_subnets'], '/24')}",
    ]
    if found["members"]:
        lines.append(f"  members: {', '.join(found['members'][:20])}{' ...' if len(found['members']) > 20 else ''}")
    for agent in found["user_agents"][:3]:
        lines.append(f"  user agent ({plural(agent['lookups'], 'lookup')}): {agent['user_agent'] or '(none)'}")
    lines += ["", "Rules that fired"]
    if found["flag"]:
        run = found["flag"]["detect_run_id"]
        note = (
            "the latest detection run"
            if found["flag_is_latest"]
            else f"an earlier run (latest is {found['latest_detect_run_id']})"
        )
        lines.append(f"  in {run}, {note}:")
        lines += ["  " + line for line in describe(found["flag"]).splitlines()]
    else:
        lines.append("  not flagged itself in any detection run")
    for record in found["campaign_flags"]:
        lines.append("  as a member of a flagged campaign:")
        lines += ["  " + line for line in describe(record).splitlines()]
    if found.get("near_misses"):
        lines.append("  not flagged in the latest run; the rules that came closest (best window each):")
        lines += ["    " + line for line in describe_near_misses(found["near_misses"])]
    lines += ["", "Activity per hour"] + _activity_lines(found["hours"])
    lines += ["", "Targets"]
    if found["watchlist"]:
        people = [f"{w['name'] or w['key']}{' (data returned)' if w['returned'] else ''}" for w in found["watchlist"]]
        lines.append(f"  watchlist people: {', '.join(people)}")
    else:
        lines.append("  watchlist people: none")
    lines.append(
        f"  {plural(t['distinct_ids'], 'distinct ID number')}, most returned first (hash prefix, region-only mask):"
    )
    for i in found["top_ids"]:
        lines.append(
            f"    {i['id_hash']}  {i['masked'] or '-':<18}  {'valid  ' if i['valid'] else 'invalid'}  "
            f"{plural(i['lookups'], 'lookup')}, {plural(i['hits'], 'hit')}  {fmt_time(i['first_seen'])}"
        )
    if t["distinct_ids"] > len(found["top_ids"]):
        lines.append(f"    ... {t['distinct_ids'] - len(found['top_ids']):,} more (enumwatch sql over lookups)")
    lines += ["", "Related entities (from lookups)"] + _related_lines(found)
    return "\n".join(lines)


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` (UTF-8), creating the parent directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
