#!/usr/bin/env python3
"""Writes bench/pipeline-throughput.svg: keep-alives/s vs concurrency, from measured figures.

    python3 bench/plot.py [--pipeline bulk.json] [--engine engine.json] [--out bench/pipeline-throughput.svg]

--pipeline: the JSON of bench/bulk.ps1 (-Json): the cmdlet pipeline at each -ThrottleLimit (when the
            cmdlet has the parameter), plus the default pipeline, the Invoke-RestMethod loop and
            ForEach-Object -Parallel as horizontal reference lines.
--engine:   the JSON of target/release/bulk (--json): the library's bulk keep-alive from Rust at
            each concurrency, the ceiling for the pipeline.
No plotting library: the SVG is written by hand (log2 x axis, linear y axis).
"""
import argparse, json, math, os

ap = argparse.ArgumentParser()
ap.add_argument("--pipeline")
ap.add_argument("--engine")
ap.add_argument("--ceiling", type=float, help="the emulator's ceiling (keep-alives/s), a reference line")
ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "pipeline-throughput.svg"))
a = ap.parse_args()

series, lines = [], []
if a.engine:
    pts = [(p["concurrency"], p["perSecond"]) for p in json.load(open(a.engine))]
    series.append(("library bulk keep-alive from Rust (engine under the pipeline, JSON batches of 20)", "#1f77b4", pts))
if a.pipeline:
    b = json.load(open(a.pipeline))
    if b.get("levels"):
        series.append(("cmdlet pipeline -ThrottleLimit N", "#d62728", [(p["throttleLimit"], p["perSecond"]) for p in b["levels"]]))
    lines.append((f"cmdlet pipeline, default ({'no -ThrottleLimit yet' if not b['hasThrottleLimit'] else 'default limit'})", "#d62728", b["pipelineDefault"]))
    lines.append(("ForEach-Object -Parallel -ThrottleLimit 8 + Invoke-RestMethod", "#2ca02c", b["parallel8"]))
    lines.append(("Invoke-RestMethod loop", "#7f7f7f", b["loop"]))
if a.ceiling:
    lines.append(("emulator ceiling for single requests (Rust load generator)", "#9467bd", a.ceiling))
lines.append(("goal", "#ff7f0e", 10000.0))

W, H, L, R, T, B = 760, 500, 80, 20, 40, 200
xs = [c for _, _, pts in series for c, _ in pts] or [1, 64]
xmin, xmax = min(xs + [1]), max(xs + [64])
ymax = max([v for _, _, pts in series for _, v in pts] + [v for _, _, v in lines]) * 1.1
step = 10 ** math.floor(math.log10(ymax / 5))
step *= 2 if ymax / step > 10 else 1
step *= 2.5 if ymax / step > 10 else 1
X = lambda c: L + (math.log2(c) - math.log2(xmin)) / max(1e-9, math.log2(xmax) - math.log2(xmin)) * (W - L - R)
Y = lambda v: H - B - v / ymax * (H - T - B)
o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
     f'<rect width="{W}" height="{H}" fill="white"/>',
     f'<text x="{W/2}" y="22" text-anchor="middle" font-size="15">Keep-alives/s vs concurrency (10,000 distinct calls, emulator on loopback, 2 cores)</text>']
v = 0.0
while v <= ymax:
    o.append(f'<line x1="{L}" x2="{W-R}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="#ddd"/>')
    o.append(f'<text x="{L-6}" y="{Y(v)+4:.1f}" text-anchor="end">{v:,.0f}</text>')
    v += step
c = xmin
while c <= xmax:
    o.append(f'<line x1="{X(c):.1f}" x2="{X(c):.1f}" y1="{T}" y2="{H-B}" stroke="#eee"/>')
    o.append(f'<text x="{X(c):.1f}" y="{H-B+16}" text-anchor="middle">{c}</text>')
    c *= 2
o.append(f'<text x="{(L+W-R)/2}" y="{H-B+34}" text-anchor="middle">concurrency ($batch requests in flight; -ThrottleLimit for the cmdlet)</text>')
o.append(f'<text transform="translate(18,{(T+H-B)/2}) rotate(-90)" text-anchor="middle">keep-alives per second</text>')
o.append(f'<rect x="{L}" y="{T}" width="{W-L-R}" height="{H-T-B}" fill="none" stroke="#333"/>')
legend = []
for name, color, value in lines:
    o.append(f'<line x1="{L}" x2="{W-R}" y1="{Y(value):.1f}" y2="{Y(value):.1f}" stroke="{color}" stroke-dasharray="6,4"/>')
    legend.append((f"{name}: {value:,.0f}/s", color, True))
for name, color, pts in series:
    o.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (color, " ".join(f"{X(c):.1f},{Y(v):.1f}" for c, v in pts)))
    for c, v in pts:
        o.append(f'<circle cx="{X(c):.1f}" cy="{Y(v):.1f}" r="3.5" fill="{color}"><title>{c}: {v:,.0f}/s</title></circle>')
    legend.append((name, color, False))
for i, (name, color, dashed) in enumerate(legend):
    y = H - B + 54 + i * 16
    dash = ' stroke-dasharray="6,4"' if dashed else ' stroke-width="2"'
    o.append(f'<line x1="{L}" x2="{L+28}" y1="{y-4}" y2="{y-4}" stroke="{color}"{dash}/>')
    o.append(f'<text x="{L+36}" y="{y}">{name}</text>')
o.append("</svg>")
open(a.out, "w").write("\n".join(o) + "\n")
print(f"wrote {a.out}")
