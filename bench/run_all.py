"""Run the benchmarks (`make bench`, or `make bench BENCH_ARGS=--full`) and write the results.

Prints each table; writes them as markdown to bench/results/<run>.md and the raw numbers to
bench/results/<run>.json, <run> naming the run (default, full, full-search, ...), and the latency
plot docs/latency.svg (index search latency p50/p99 against collection size, naive vs ours, log axes).

    .venv/bin/python bench/run_all.py [--full] [--only ingest,search,startup] [--no-wait]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

BENCHES = ("ingest", "search", "startup")


def markdown(name: str, res: dict) -> str:
    parts = [f"### {res['title']}", ""]
    if name == "ingest":
        lo, hi = res["load"]
        parts += [f"Load average before/after: {lo:.2f} / {hi:.2f}. {res.get('note', '')}", "",
                  common.table(res["headers"], res["rows"]), "", "Where the time goes:", "",
                  common.table(res["breakdown_headers"], res["breakdown"])]
    elif name == "search":
        parts += ["Load average per size (before -> after): " + ", ".join(
            f"{r['n']:,}: {r['load']:.2f} -> {r['load_after']:.2f}" for r in res["sizes"]) + ".",
            "Mixture check: " + ", ".join(f"{r['n']:,}: cosine unrelated {r['cos_random']:.2f}, to nearest "
                                          f"{r['cos_nn']:.2f}" for r in res["sizes"]) + ".", "",
            common.table(res["headers"], res["rows"])]
        if res.get("sweep_rows"):
            parts += ["", "IVF nprobe sweep (same index, 200 queries):", "",
                      common.table(res["sweep_headers"], res["sweep_rows"])]
        if res.get("text_rows"):
            parts += ["", "Text query encoding (ViT-B/32 architecture):", "",
                      common.table(res["text_headers"], res["text_rows"]),
                      "", "Search API estimate = text encode + index search + one DB query (ms):", "",
                      common.table(res["estimate_headers"], res["estimate_rows"])]
        if res.get("api_rows"):
            parts += ["", "Real API end to end (`django.test.Client().get('/api/search', q, k=20)`, SQLite, "
                      "ViT-B/32 architecture, precision auto):", "",
                      "; ".join(f"{a['n']:,} rows: populate {a['populate_s']:.1f} s, warm-up {a['warm_s']:.1f} s, "
                                f"DB query p50 {a['db_p50']:.2f} ms, load {a['load']:.2f} -> {a['load_after']:.2f}"
                                for a in res["api"]), "",
                      common.table(res["api_headers"], res["api_rows"])]
    else:
        parts += [f"Note: {n}." for n in res.get("notes", [])] + ["", common.table(res["headers"], res["rows"])]
    return "\n".join(parts) + "\n"


# ---- the plot, as hand-written SVG (no matplotlib) -------------------------------------------
def latency_svg(sizes: list[dict], path: Path, subtitle: str = "") -> None:
    W, H, L, R, T, B = 720, 440, 70, 170, 50, 60
    pw, ph = W - L - R, H - T - B
    xs = [s["n"] for s in sizes]
    ys = [s[w][q] for s in sizes for w in ("naive", "ours") for q in ("p50", "p99")] + [15, 50]
    x0, x1 = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    if x1 == x0:
        x1 += 1
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    X = lambda v: L + (math.log10(v) - x0) / (x1 - x0) * pw  # noqa: E731
    Y = lambda v: T + ph - (math.log10(v) - y0) / (y1 - y0) * ph  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{L}" y="22" font-size="15" font-weight="bold">Index search latency vs collection size</text>',
           f'<text x="{L}" y="38" fill="#555">{subtitle}</text>']
    for e in range(x0, x1 + 1):
        x = X(10 ** e)
        out.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{T + ph}" stroke="#ddd"/>')
        label = {3: "1k", 4: "10k", 5: "100k", 6: "1M", 7: "10M"}.get(e, f"1e{e}")
        out.append(f'<text x="{x:.1f}" y="{T + ph + 18}" text-anchor="middle">{label}</text>')
    for e in range(y0, y1 + 1):
        y = Y(10 ** e)
        out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{L + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{10 ** e:g}</text>')
    out.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    out.append(f'<text x="{L + pw / 2}" y="{H - 18}" text-anchor="middle">images in the index (log scale)</text>')
    out.append(f'<text transform="translate(18,{T + ph / 2}) rotate(-90)" text-anchor="middle">'
               'latency per query, ms (log scale)</text>')
    for v, name in ((15, "target p50 15 ms"), (50, "target p99 50 ms")):
        y = Y(v)
        out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{L + pw}" y2="{y:.1f}" stroke="#2a2" stroke-dasharray="2,4"/>')
        out.append(f'<text x="{L + pw + 6}" y="{y + 4:.1f}" fill="#2a2">{name}</text>')
    series = [("naive", "p50", "#d62728", ""), ("naive", "p99", "#d62728", "6,4"),
              ("ours", "p50", "#1f77b4", ""), ("ours", "p99", "#1f77b4", "6,4")]
    for i, (who, q, colour, dash) in enumerate(series):
        pts = [(X(s["n"]), Y(s[who][q])) for s in sizes]
        d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        out.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="2"'
                   + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
        for (x, y), s in zip(pts, sizes, strict=True):
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"><title>{who} {q} at '
                       f'{s["n"]:,}: {s[who][q]:.2f} ms</title></circle>')
        ly = T + ph - 4 * 18 + i * 18
        out.append(f'<line x1="{L + pw + 10}" y1="{ly}" x2="{L + pw + 36}" y2="{ly}" stroke="{colour}" '
                   f'stroke-width="2"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
        label = f"{who} {q}" + (" (flat)" if who == "naive" else " (app index)")
        out.append(f'<text x="{L + pw + 40}" y="{ly + 4}">{label}</text>')
    out.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="full sizes (1M vectors; 64 + 512 images; 5 start-ups)")
    ap.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset of " + ",".join(BENCHES))
    ap.add_argument("--no-wait", action="store_true", help="do not wait for the load average to drop")
    args = ap.parse_args(argv)
    only = [b.strip() for b in args.only.split(",") if b.strip()]
    bad = set(only) - set(BENCHES)
    if bad:
        ap.error(f"unknown benchmark(s): {', '.join(sorted(bad))}")
    flags = (["--full"] if args.full else []) + (["--no-wait"] if args.no_wait else [])

    started = time.time()
    results = {}
    for name in only:
        mod = __import__(name)
        print(f"\n=== {name} {' '.join(flags)} ===", flush=True)
        results[name] = mod.main(list(flags))

    mode = ("full" if args.full else "default") + ("" if set(only) == set(BENCHES) else "-" + "-".join(only))
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    head = [f"## Benchmark results ({mode}, {stamp}, git {common.git_rev()}, {time.time() - started:.0f} s)", "",
            f"Machine: {common.machine_line()}.", ""]
    md = "\n".join(head) + "\n".join(markdown(n, r) for n, r in results.items())
    common.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    report = common.RESULTS_DIR / f"{mode}.md"
    report.write_text(md)
    raw = {n: r for n, r in results.items()}
    (common.RESULTS_DIR / f"{mode}.json").write_text(json.dumps(raw, indent=1, default=str))
    if "search" in results:
        latency_svg(results["search"]["sizes"], common.ROOT / "docs" / "latency.svg",
                    f"{mode} run {stamp}; {common.machine()['cpu']}, {common.machine()['cores']} cores; "
                    "500 single queries, k=21")
    print(f"\nwrote {report}" + (" and docs/latency.svg" if "search" in results else ""))


if __name__ == "__main__":
    main()
