"""`enumwatch investigate --html`: one self-contained page with a timeline, for a browser with no network.

The chart is plotly: its wheel ships plotly.js, which is inlined into the page, so the file opens
offline, on an air-gapped analyst workstation, and can be attached to a case. Everything else is plain
HTML built here with every value escaped (entity values come from request headers).
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from analyst.investigate_text import fmt_time, plural, who
from analyst.near_misses import describe_near_misses

CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1200px; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9rem; } td, th { padding: 2px 10px; text-align: left; border-bottom: 1px solid #eee; }
td.n { text-align: right; font-variant-numeric: tabular-nums; } code { background: #f4f4f4; padding: 0 3px; }
.sev-critical { color: #b00020; font-weight: bold; } .sev-high { color: #d35400; font-weight: bold; } .muted { color: #777; }
"""


def _e(value) -> str:
    return escape("" if value is None else str(value))


def _table(headers: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{_e(c)}</td>' if i in numeric else f"<td>{_e(c)}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def timeline_html(hours: list[dict]) -> str:
    """The plotly timeline (lookups per hour, distinct IDs per hour, cumulative distinct IDs) with plotly.js inlined."""
    import plotly.graph_objects as go

    x = [_iso(h["hour"]) for h in hours]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=x, y=[h["lookups"] for h in hours], name="lookups per hour", marker_color="#9db4d3"))
    fig.add_trace(
        go.Scatter(x=x, y=[h["distinct_ids"] for h in hours], name="distinct IDs per hour", mode="lines+markers")
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[h["cumulative_ids"] for h in hours],
            name="distinct IDs so far",
            mode="lines",
            yaxis="y2",
            line={"dash": "dot"},
        )
    )
    fig.update_layout(
        xaxis={"title": "hour (UTC)"},
        yaxis={"title": "per hour"},
        yaxis2={"title": "so far", "overlaying": "y", "side": "right", "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.25},
        margin={"l": 50, "r": 50, "t": 20, "b": 40},
        height=420,
        bargap=0.1,
    )
    return fig.to_html(full_html=False, include_plotlyjs=True, config={"displaylogo": False, "responsive": True})


def _flag_html(record: dict | None, title: str) -> str:
    if not record:
        return ""
    sev = record["severity"]
    rows = [
        [
            ev["rule"] + (" (shadow)" if ev["shadow"] else ""),
            ev["window"],
            fmt_time(ev["window_start"]),
            ", ".join(
                f"{k} {v:g}" + (f" (>= {(ev['threshold'] or {})[k]:g})" if k in (ev["threshold"] or {}) else "")
                for k, v in sorted((ev["observed"] or {}).items())
            ),
        ]
        for ev in record["evidence"]
    ]
    return (
        f'<p>{_e(title)}: <span class="sev-{_e(sev)}">{_e(sev.upper())} {_e(record["score"])}</span> '
        f"in <code>{_e(record['detect_run_id'])}</code></p>"
        + _table(["rule", "window", "window start", "observed (threshold)"], rows)
    )


def render_html(found: dict) -> str:
    """The whole page: summary, rules fired, timeline, targets, related entities."""
    t = found["totals"]
    parts = [
        f"<h1>enumwatch investigation: {_e(who(found))}</h1>",
        f"<p>First seen {_e(fmt_time(found['first_seen']))}, last seen {_e(fmt_time(found['last_seen']))}. "
        f"{_e(plural(t['lookups'], 'lookup'))}, {_e(plural(t['distinct_ids'], 'distinct ID'))}, {_e(plural(t['distinct_names'], 'distinct name'))}, "
        f"{_e(plural(t['hits'], 'hit'))} (data returned), {_e(plural(t['misses'], 'miss'))}, {_e(plural(t['invalid_ids'], 'invalid ID'))}; "
        f"{_e(plural(t['n_devices'], 'device'))}, {_e(plural(t['n_ips'], 'IP'))} in {_e(plural(t['n_subnets'], '/24'))}.</p>",
    ]
    if found["members"]:
        parts.append(f"<p>Members: {_e(', '.join(found['members']))}</p>")
    if found["user_agents"]:
        parts.append(
            _table(["user agent", "lookups"], [[a["user_agent"], a["lookups"]] for a in found["user_agents"]], {1})
        )
    parts.append("<h2>Rules that fired</h2>")
    if found["flag"]:
        latest = (
            "latest detection run"
            if found["flag_is_latest"]
            else f"an earlier run; latest is {found['latest_detect_run_id']}"
        )
        parts.append(_flag_html(found["flag"], f"Flagged ({latest})"))
    else:
        parts.append('<p class="muted">Not flagged itself in any detection run.</p>')
    for record in found["campaign_flags"]:
        parts.append(_flag_html(record, f"As a member of campaign {record['entity_value']}"))
    if found.get("near_misses"):
        parts.append("<h3>Not flagged: the rules that came closest</h3><ul>")
        parts += [f"<li>{_e(line[2:])}</li>" for line in describe_near_misses(found["near_misses"])]
        parts.append("</ul>")
    parts.append("<h2>Lookups and distinct IDs over time</h2>")
    parts.append(timeline_html(found["hours"]) if found["hours"] else '<p class="muted">No lookups.</p>')
    parts.append(
        "<details><summary>per hour</summary>"
        + _table(
            ["hour (UTC)", "lookups", "distinct IDs", "new IDs", "distinct IDs so far", "names", "hits", "misses"],
            [
                [
                    _iso(h["hour"]),
                    h["lookups"],
                    h["distinct_ids"],
                    h["new_ids"],
                    h["cumulative_ids"],
                    h["distinct_names"],
                    h["hits"],
                    h["misses"],
                ]
                for h in found["hours"]
            ],
            {1, 2, 3, 4, 5, 6, 7},
        )
        + "</details>"
    )
    parts.append("<h2>Targets</h2>")
    people = [[w["name"] or w["key"], "yes" if w["returned"] else "no"] for w in found["watchlist"]]
    parts.append(
        _table(["watchlist person", "data returned"], people) if people else '<p class="muted">No watchlist people.</p>'
    )
    parts.append(
        f"<p>{_e(plural(t['distinct_ids'], 'distinct ID number'))}; the first {len(found['top_ids'])}, most returned first "
        "(hash prefix and region-only mask, never the number):</p>"
    )
    parts.append(
        _table(
            ["id hash", "masked", "valid", "lookups", "hits", "first seen", "last seen"],
            [
                [
                    i["id_hash"],
                    i["masked"],
                    "yes" if i["valid"] else "no",
                    i["lookups"],
                    i["hits"],
                    fmt_time(i["first_seen"]),
                    fmt_time(i["last_seen"]),
                ]
                for i in found["top_ids"]
            ],
            {3, 4},
        )
    )
    parts.append("<h2>Related entities</h2>")
    related = found["related"]
    for kind, label in (("device", "Same device"), ("ip", "Same IP"), ("subnet", "Same /24, other IPs")):
        group = related[kind]
        parts.append(f"<p>{_e(label)}: {_e(group['total'])}</p>")
        if group["entities"]:
            parts.append(
                _table(
                    ["entity", "via", "lookups", "first seen", "last seen", "flagged (latest run)"],
                    [
                        [
                            f"{e['entity_type']} {e['entity_value']}",
                            ", ".join(e["via"]),
                            e["lookups"],
                            fmt_time(e["first_seen"]),
                            fmt_time(e["last_seen"]),
                            e["flagged"] or "",
                        ]
                        for e in group["entities"]
                    ],
                    {2},
                )
            )
    campaigns = related["campaigns"]
    parts.append(f"<p>Same campaign (latest run): {len(campaigns)}</p>")
    if campaigns:
        parts.append(
            _table(
                ["rule", "linked by", "accounts", "lookups", "other members", "flagged"],
                [
                    [
                        c["rule"],
                        f"{c['link']} {c['link_value']}",
                        c["n_members"],
                        c["lookups"],
                        ", ".join(c["members"]),
                        c["flagged"] or "",
                    ]
                    for c in campaigns
                ],
                {2, 3},
            )
        )
    body = "\n".join(parts)
    title = _e(f"enumwatch: {found['entity_type']} {found['entity_value']}")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{CSS}</style></head>\n<body>\n{body}\n"
        f'<p class="muted">Generated by enumwatch investigate. Counts are exact, from the lookups table; '
        f"times are UTC.</p>\n</body></html>\n"
    )
