#!/usr/bin/env python3
"""Summaries of `make bench` and `make loadtest` (standard library only).

    report.py --criterion target/criterion --out bench/results   # after cargo bench
    report.py --runs bench/results/runs.jsonl --out bench/results  # after the load test

Writes bench/results/bench.json (criterion means), loadtest.json (runs + ratios + targets),
summary.md (the tables for the README) and loadtest.svg (the chart). Each step keeps what
the other wrote, so the summary shows the latest of both.
"""

import argparse
import datetime
import html
import json
import os
import platform


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor(),
        "kernel": platform.release(),
        "date": datetime.date.today().isoformat(),
    }


# ----------------------------------------------------------------------------- criterion


def read_criterion(root):
    """Mean time (ns) and throughput of every benchmark under target/criterion."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        if "estimates.json" not in files or os.path.basename(dirpath) != "new":
            continue
        bench_dir = os.path.dirname(dirpath)
        try:
            with open(os.path.join(dirpath, "benchmark.json"), encoding="utf-8") as f:
                meta = json.load(f)
            with open(os.path.join(dirpath, "estimates.json"), encoding="utf-8") as f:
                est = json.load(f)
        except (OSError, ValueError):
            continue
        name = meta.get("full_id") or os.path.relpath(bench_dir, root)
        entry = {"mean_ns": est["mean"]["point_estimate"]}
        tp = meta.get("throughput") or {}
        if "Bytes" in tp:
            entry["bytes"] = tp["Bytes"]
            entry["mb_per_s"] = tp["Bytes"] / entry["mean_ns"] * 1e9 / 1e6
        if "Elements" in tp:
            entry["elements"] = tp["Elements"]
            entry["per_s"] = tp["Elements"] / entry["mean_ns"] * 1e9
        out[name] = entry
    return out


def fmt_time(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def bench_tables(b):
    lines = []
    rows = sorted(k for k in b if k.startswith("request/pipeline/"))
    if rows:
        lines += [
            "| request (parse + convert + serialise) | size | time | MB/s |",
            "|---|---:|---:|---:|",
        ]
        for k in rows:
            e = b[k]
            lines.append(
                f"| {k.split('/', 2)[2]} | {e.get('bytes', 0) / 1024:.0f} KiB | "
                f"{fmt_time(e['mean_ns'])} | {e.get('mb_per_s', 0):.0f} |"
            )
        lines.append("")
    stages = sorted(k for k in b if k.startswith("request/stage/"))
    if stages:
        lines += ["| stage | time | MB/s |", "|---|---:|---:|"]
        for k in stages:
            e = b[k]
            lines.append(
                f"| {k.split('/', 2)[2]} | {fmt_time(e['mean_ns'])} | {e.get('mb_per_s', 0):.0f} |"
            )
        lines.append("")
    pairs = []
    for k in sorted(b):
        if k.startswith("json/serde_json/"):
            other = k.replace("json/serde_json/", "json/sonic_rs/")
            if other in b:
                pairs.append((k[len("json/serde_json/"):], b[k], b[other]))
    if pairs:
        lines += [
            "| JSON work | serde_json | sonic-rs | sonic-rs speed-up |",
            "|---|---:|---:|---:|",
        ]
        for name, s, r in pairs:
            lines.append(
                f"| {name} | {fmt_time(s['mean_ns'])} | {fmt_time(r['mean_ns'])} | "
                f"{s['mean_ns'] / r['mean_ns']:.2f}× |"
            )
        lines.append("")
    streams = sorted(k for k in b if k.startswith(("stream/", "response/")))
    if streams:
        lines += ["| response conversion | time | rate |", "|---|---:|---:|"]
        for k in streams:
            e = b[k]
            if k.startswith("response/"):
                rate = "—"
            elif "mb_per_s" in e:
                rate = f"{e['mb_per_s']:.0f} MB/s upstream"
            else:
                rate = f"{e.get('per_s', 0) / 1e6:.2f} M events/s"
            lines.append(f"| {k} | {fmt_time(e['mean_ns'])} | {rate} |")
        lines.append("")
    return lines


# ----------------------------------------------------------------------------- load test


LABEL = {
    "direct": "(1) direct to the mock",
    "pingora": "(2) Pingora pass-through",
    "nginx": "(3) nginx pass-through",
    "convert": "(4) codex-convert-proxy",
}
ORDER = ["direct", "pingora", "nginx", "convert"]


def by_key(runs):
    """Each (target, mode, kind) to its run; of a mode run several times (the store rounds,
    interleaved against the noise of a shared machine) the one of median throughput."""
    groups = {}
    for r in runs:
        groups.setdefault((r["target"], r["mode"], r["kind"]), []).append(r)
    out = {}
    for k, rs in groups.items():
        rs = sorted(rs, key=lambda r: r.get("rps") or 0)
        out[k] = rs[(len(rs) - 1) // 2] if len(rs) % 2 else rs[len(rs) // 2 - 1]
        if len(rs) > 1:
            out[k] = dict(out[k], rounds=len(rs))
    return out


def analyse(runs, bench):
    by = by_key(runs)

    def get(t, m, k, field):
        r = by.get((t, m, k))
        return None if r is None else r.get(field)

    def ratio(a, b):
        return None if not a or not b else round(a / b, 3)

    ratios = {}
    for mode in ("json", "sse"):
        c = get("convert", mode, "saturate", "rps")
        ratios[f"convert/pingora rps {mode}"] = ratio(c, get("pingora", mode, "saturate", "rps"))
        ratios[f"convert/nginx rps {mode}"] = ratio(c, get("nginx", mode, "saturate", "rps"))
        ratios[f"convert/pingora cpu per request {mode}"] = ratio(
            get("convert", mode, "saturate", "cpu_us_per_req"),
            get("pingora", mode, "saturate", "cpu_us_per_req"),
        )
    added = {}
    for t in ("pingora", "nginx", "convert"):
        for q in ("p50_us", "p99_us"):
            a, d = get(t, "json", "rate", q), get("direct", "json", "rate", q)
            if a is not None and d is not None:
                added[f"{t} {q}"] = a - d
    per_stream = get("convert", "sse", "streams", "kib_per_stream")
    pingora_per_stream = get("pingora", "sse", "streams", "kib_per_stream")
    # Codex writes `type` first in every item; history-300 has the same items with sorted
    # members (a client that sorts keys).
    history_ns = (bench.get("request/pipeline/history-300-codex") or {}).get("mean_ns")
    sorted_ns = (bench.get("request/pipeline/history-300") or {}).get("mean_ns")
    targets = [
        {
            "target": "converting proxy ≥ 0.9× Pingora pass-through req/s (non-stream)",
            "value": ratios.get("convert/pingora rps json"),
            "unit": "×",
            "ok": (ratios.get("convert/pingora rps json") or 0) >= 0.9,
        },
        {
            "target": f"p99 added latency ≤ 1 ms at {runs_rate(runs)} req/s",
            "value": None if "convert p99_us" not in added else round(added["convert p99_us"] / 1000, 3),
            "unit": "ms",
            "ok": added.get("convert p99_us", 1e9) <= 1000,
        },
        {
            "target": "RSS per open stream close to the Pingora pass-through's (≤ 1.25×)",
            "value": per_stream,
            "unit": f"KiB (Pingora: {pingora_per_stream} KiB)",
            "ok": per_stream is not None
            and pingora_per_stream is not None
            and per_stream <= 1.25 * pingora_per_stream,
        },
        {
            "target": "a 1 MB Codex history converted in ≤ 2 ms",
            "value": None if history_ns is None else round(history_ns / 1e6, 3),
            "unit": "ms",
            "ok": history_ns is not None and history_ns <= 2e6,
        },
        {
            "target": "… the same history with sorted members, ≤ 2 ms",
            "value": None if sorted_ns is None else round(sorted_ns / 1e6, 3),
            "unit": "ms",
            "ok": sorted_ns is not None and sorted_ns <= 2e6,
        },
    ]
    # Issue #19: the store and the fixed cost per request, side by side in one run.
    rps = lambda t, m: get(t, m, "saturate", "rps")  # noqa: E731
    ratios["store on/off rps tiny"] = ratio(rps("convert", "tiny-store"), rps("convert", "tiny"))
    ratios["store on/off rps codex"] = ratio(
        rps("convert", "json-store"), rps("convert", "json-nostore")
    )
    ratios["convert/pingora rps tiny"] = ratio(rps("convert", "tiny"), rps("pingora", "tiny"))
    ratios["convert/pingora cpu per request tiny"] = ratio(
        get("convert", "tiny", "saturate", "cpu_us_per_req"),
        get("pingora", "tiny", "saturate", "cpu_us_per_req"),
    )
    for name, key, bound in (
        ("store on ≥ 0.9× store off (tiny create)", "store on/off rps tiny", 0.9),
        ("store on ≥ 0.9× store off (Codex request)", "store on/off rps codex", 0.9),
        ("tiny create, store off, ≥ 0.9× Pingora", "convert/pingora rps tiny", 0.9),
    ):
        v = ratios.get(key)
        if v is not None:
            targets.append({"target": name, "value": v, "unit": "×", "ok": v >= bound})
    for r in runs:
        if r["kind"] != "sessions" or r.get("history_bytes") != 1024 or not r.get("sessions_idle"):
            continue
        if r["sessions_requested"] >= 10000:
            targets.append({
                "target": "10,000 idle Codex sessions on one instance",
                "value": r["sessions_idle"],
                "unit": f"sessions ({r['rss_idle_kib'] / 1024:.0f} MiB)",
                "ok": r["sessions_idle"] >= 10000,
            })
    for r in runs:
        if r["kind"] != "sessions" or r["sessions_requested"] >= 10000:
            continue
        bound = 32 + 1.5 * r["create_bytes"] / 1024
        targets.append({
            "target": f"an idle session with {r['history_bytes'] // 1024} KiB of history ≤ 32 KiB + 1.5× its history ({bound:.0f} KiB)",
            "value": r["kib_per_session"],
            "unit": "KiB",
            "ok": r["kib_per_session"] <= bound,
        })
    return ratios, added, targets


def runs_rate(runs):
    rates = [r["rps"] for r in runs if r["kind"] == "rate" and r.get("rps")]
    return round(sum(rates) / len(rates)) if rates else "?"


def load_tables(runs, ratios, added, targets):
    by = by_key(runs)
    lines = [
        "| target | mode | req/s | p50 | p99 | CPU/req | RSS | p50 @rate | p99 @rate | added p99 @rate |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in ORDER:
        for m in ("json", "sse"):
            s = by.get((t, m, "saturate"))
            if not s:
                continue
            r = by.get((t, m, "rate"))
            d = by.get(("direct", "json", "rate"))
            add = "—"
            if r and d and t != "direct" and m == "json":
                add = f"{(r['p99_us'] - d['p99_us']) / 1000:+.2f} ms"
            lines.append(
                f"| {LABEL[t]} | {'stream' if m == 'sse' else 'non-stream'} | {s['rps']:,.0f} | "
                f"{s['p50_us'] / 1000:.2f} ms | {s['p99_us'] / 1000:.2f} ms | "
                f"{s['cpu_us_per_req']:.0f} µs | {s['rss_kib'] / 1024:.1f} MiB | "
                + (f"{r['p50_us'] / 1000:.2f} ms | {r['p99_us'] / 1000:.2f} ms | " if r else "— | — | ")
                + f"{add} |"
            )
    lines.append("")
    streams = [r for r in runs if r["kind"] == "streams"]
    if streams:
        lines += [
            "| open streams (slow upstream) | open | RSS before | RSS with all open | per stream |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in sorted(streams, key=lambda r: ORDER.index(r["target"])):
            lines.append(
                f"| {LABEL[r['target']]} | {r['streams_open']:,} / {r['streams_requested']:,} | "
                f"{r['rss_before_kib'] / 1024:.1f} MiB | {r['rss_open_kib'] / 1024:.1f} MiB | "
                f"{r['kib_per_stream']:.1f} KiB |"
            )
        lines.append("")
    store_modes = [
        ("pingora", "tiny", "tiny Chat request"),
        ("convert", "tiny", "tiny create, store off"),
        ("convert", "tiny-store", "tiny create, store on (the default)"),
        ("convert", "json-nostore", "Codex request (45 KiB), store off"),
        ("convert", "json-store", "Codex request (45 KiB), store on"),
    ]
    if any(by.get((t, m, "saturate")) for t, m, _ in store_modes):
        lines += [
            "| store and fixed cost | target | req/s | p99 | CPU/req |",
            "|---|---|---:|---:|---:|",
        ]
        for t, m, what in store_modes:
            s = by.get((t, m, "saturate"))
            if s:
                lines.append(
                    f"| {what} | {LABEL[t]} | {s['rps']:,.0f} | {s['p99_us'] / 1000:.2f} ms | "
                    f"{s['cpu_us_per_req']:.0f} µs |"
                )
        lines.append("")
    growth = {}
    for r in runs:
        mode = str(r.get("mode", ""))
        if r["kind"] == "saturate" and mode.startswith("growth-http-"):
            growth.setdefault(int(mode.rsplit("-", 1)[1]), {})["http"] = r["cpu_us_per_req"]
        if r["kind"] == "growth":
            growth.setdefault(r["history_bytes"], {})["ws"] = r.get("cpu_us_per_turn")
    if growth:
        lines += [
            "| history | CPU per turn, HTTP (the whole history) | CPU per turn, WebSocket (a continuation) | ratio |",
            "|---:|---:|---:|---:|",
        ]
        for h in sorted(growth):
            g = growth[h]
            http, ws = g.get("http"), g.get("ws")
            ratio = f"{http / ws:.1f}×" if http and ws else "—"
            fmt = lambda v: "—" if v is None else f"{v:,.0f} µs"  # noqa: E731
            lines.append(f"| {h / 1024:,.0f} KiB | {fmt(http)} | {fmt(ws)} | {ratio} |")
        lines.append("")
    sessions = [r for r in runs if r["kind"] == "sessions"]
    if sessions:
        lines += [
            "| idle WebSocket sessions | history | idle / opened | RSS before | RSS idle | per session |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in sessions:
            lines.append(
                f"| {LABEL[r['target']]} | {r['history_bytes'] / 1024:.0f} KiB | "
                f"{r['sessions_idle']:,} / {r['sessions_requested']:,} | "
                f"{r['rss_before_kib'] / 1024:.1f} MiB | {r['rss_idle_kib'] / 1024:.1f} MiB | "
                f"{r['kib_per_session']:.1f} KiB |"
            )
            curve = r.get("curve") or []
            if curve:
                pts = ", ".join(f"{n:,}: {k / 1024:.0f} MiB" for n, k in curve)
                lines.append(f"| … RSS as they open | | | | {pts} | |")
        lines.append("")
    lines += ["| ratio | value |", "|---|---:|"]
    for k, v in ratios.items():
        if v is not None:
            lines.append(f"| {k} | {v:.2f}× |")
    lines.append("")
    lines += ["| target | measured | met |", "|---|---:|:---:|"]
    for t in targets:
        v = "—" if t["value"] is None else f"{t['value']}{' ' if t['unit'] != '×' else ''}{t['unit']}"
        lines.append(f"| {t['target']} | {v} | {'yes' if t['ok'] else '**no**'} |")
    lines.append("")
    return lines


def svg_chart(runs, ratios, m):
    """Two panels: saturated req/s per target (non-stream and stream bars), and CPU µs per
    request."""
    by = by_key(runs)
    targets = [t for t in ORDER if (t, "json", "saturate") in by]
    colors = {"json": "#4e79a7", "sse": "#f28e2b"}
    width, panel_h, top, left = 760, 210, 56, 210
    height = top + 2 * panel_h + 60
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">'
        "codex-convert-proxy load test (same run, 127.0.0.1)</text>",
        f'<text x="{width / 2}" y="38" text-anchor="middle" fill="#555">'
        f"{html.escape(str(m['nproc']))} cores, {html.escape(m['cpu'])}, {m['date']}; "
        "load generator on the same cores</text>",
    ]

    def panel(y0, title, field, fmt):
        vals = [
            by[(t, mode, "saturate")][field]
            for t in targets
            for mode in ("json", "sse")
            if (t, mode, "saturate") in by
        ]
        vmax = max(vals) if vals else 1
        bar_w = width - left - 90
        out.append(f'<text x="10" y="{y0 + 14}" font-weight="bold">{title}</text>')
        row_h = (panel_h - 30) / max(len(targets), 1)
        for i, t in enumerate(targets):
            y = y0 + 24 + i * row_h
            out.append(
                f'<text x="{left - 8}" y="{y + row_h / 2}" text-anchor="end" '
                f'dominant-baseline="middle">{html.escape(LABEL[t])}</text>'
            )
            for j, mode in enumerate(("json", "sse")):
                r = by.get((t, mode, "saturate"))
                if not r:
                    continue
                h = (row_h - 8) / 2
                yy = y + 2 + j * h
                w = max(1.0, r[field] / vmax * bar_w)
                out.append(
                    f'<rect x="{left}" y="{yy:.1f}" width="{w:.1f}" height="{h - 1:.1f}" '
                    f'fill="{colors[mode]}"/>'
                )
                out.append(
                    f'<text x="{left + w + 4:.1f}" y="{yy + h / 2:.1f}" '
                    f'dominant-baseline="middle">{fmt(r[field])}</text>'
                )

    panel(top, "Requests per second, saturated (higher is better)", "rps", lambda v: f"{v:,.0f}")
    panel(
        top + panel_h,
        "Proxy CPU per request, µs (lower is better)",
        "cpu_us_per_req",
        lambda v: f"{v:,.0f}",
    )
    ly = height - 34
    out.append(f'<rect x="{left}" y="{ly}" width="12" height="12" fill="{colors["json"]}"/>')
    out.append(f'<text x="{left + 16}" y="{ly + 10}">non-stream (JSON)</text>')
    out.append(f'<rect x="{left + 150}" y="{ly}" width="12" height="12" fill="{colors["sse"]}"/>')
    out.append(f'<text x="{left + 166}" y="{ly + 10}">stream (SSE)</text>')
    r1 = ratios.get("convert/pingora rps json")
    r2 = ratios.get("convert/nginx rps json")
    if r1 and r2:
        out.append(
            f'<text x="{left + 280}" y="{ly + 10}">non-stream ratios: (4)/(2) {r1:.2f}×, '
            f"(4)/(3) {r2:.2f}×</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- main


def sessions_svg(runs, m):
    """RSS against idle WebSocket sessions open (the largest sessions run), as a line."""
    runs = [r for r in runs if r.get("kind") == "sessions" and r.get("curve")]
    if not runs:
        return None
    r = max(runs, key=lambda r: r["sessions_requested"])
    pts = r["curve"]
    w, h, left, bottom, top = 640, 320, 70, 40, 40
    max_n = max(n for n, _ in pts) or 1
    max_k = max(k for _, k in pts) or 1
    x = lambda n: left + (w - left - 20) * n / max_n  # noqa: E731
    y = lambda k: h - bottom - (h - bottom - top) * k / max_k  # noqa: E731
    path = " ".join(f"{x(n):.1f},{y(k):.1f}" for n, k in pts)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{left}" y="20" font-size="14">RSS against idle WebSocket sessions '
        f"({r['history_bytes'] // 1024} KiB of history each; {r['kib_per_session']:.0f} KiB per session)</text>",
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - 20}" y2="{h - bottom}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="black"/>',
        f'<polyline points="{path}" fill="none" stroke="#2a6fdb" stroke-width="2"/>',
    ]
    for n, k in pts:
        out.append(f'<circle cx="{x(n):.1f}" cy="{y(k):.1f}" r="3" fill="#2a6fdb"/>')
    for i in range(0, 6):
        n = max_n * i / 5
        out.append(f'<text x="{x(n):.1f}" y="{h - bottom + 16}" text-anchor="middle">{n:,.0f}</text>')
        k = max_k * i / 5
        out.append(f'<text x="{left - 6}" y="{y(k) + 4:.1f}" text-anchor="end">{k / 1024:,.0f} MiB</text>')
    out.append(f'<text x="{(w + left) / 2}" y="{h - 6}" text-anchor="middle">sessions open ({html.escape(m["cpu"])}, {m["date"]})</text>')
    out.append("</svg>")
    return "\n".join(out)


def load_json(path, default):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--criterion")
    ap.add_argument("--runs")
    ap.add_argument("--out", default="bench/results")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    m = machine()
    bench_path = os.path.join(a.out, "bench.json")
    load_path = os.path.join(a.out, "loadtest.json")
    bench = load_json(bench_path, {})
    if a.criterion:
        bench = {"machine": m, "results": read_criterion(a.criterion)}
        with open(bench_path, "w", encoding="utf-8") as f:
            json.dump(bench, f, indent=1, sort_keys=True)
    load = load_json(load_path, {})
    if a.runs:
        with open(a.runs, encoding="utf-8") as f:
            runs = [json.loads(line) for line in f if line.strip()]
        ratios, added, targets = analyse(runs, bench.get("results", {}))
        load = {"machine": m, "runs": runs, "ratios": ratios, "added_us": added, "targets": targets}
        with open(load_path, "w", encoding="utf-8") as f:
            json.dump(load, f, indent=1)
        with open(os.path.join(a.out, "loadtest.svg"), "w", encoding="utf-8") as f:
            f.write(svg_chart(runs, ratios, m))
        sessions = sessions_svg(runs, m)
        if sessions:
            with open(os.path.join(a.out, "sessions.svg"), "w", encoding="utf-8") as f:
                f.write(sessions)
    elif load.get("runs"):
        # refresh the targets with the latest benchmark figures
        ratios, added, targets = analyse(load["runs"], bench.get("results", {}))
        load.update(ratios=ratios, added_us=added, targets=targets)
        with open(load_path, "w", encoding="utf-8") as f:
            json.dump(load, f, indent=1)

    lines = ["# Performance results", ""]
    if load.get("runs"):
        lm = load["machine"]
        lines += [
            f"Load test: {lm['date']}, {lm['nproc']} cores ({lm['cpu']}), kernel {lm['kernel']}.",
            "",
        ]
        lines += load_tables(load["runs"], load["ratios"], load["added_us"], load["targets"])
    if bench.get("results"):
        bm = bench["machine"]
        lines += [f"Benchmarks (criterion means): {bm['date']}, {bm['nproc']} cores ({bm['cpu']}).", ""]
        lines += bench_tables(bench["results"])
    with open(os.path.join(a.out, "summary.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
