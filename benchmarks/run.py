#!/usr/bin/env python3
"""nftproxy benchmark suite.

Builds nftproxy in release mode, runs `nftproxy bench --apply` for each cluster size, and measures
two baselines in the same run, each in a fresh network namespace:
  * nft-f-ours:      the same Ruleset, rendered as text, loaded with `nft -f`;
  * nft-f-kubeproxy: the rule set kube-proxy v1.36 (nftables mode) would send, loaded with `nft -f`.
Writes benchmarks/results/results.json, results.md (the table for docs/performance.md) and
chart.svg (time per phase against cluster size).

Usage (root; network namespaces are created and removed):
    python3 benchmarks/run.py                 # sizes 1000 10000 50000, plus 1 service x 1000 endpoints
    python3 benchmarks/run.py --sizes 1000    # a quick run
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def nft_load_baseline(path, label):
    """Loads an nft script into a fresh namespace; returns wall seconds, kernel (sys) seconds, nft peak RSS MiB."""
    ns = f"bench-{label}-{os.getpid()}"
    run(["ip", "netns", "add", ns])
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        run(["ip", "netns", "exec", ns, "nft", "-f", path])
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "wall_ms": wall * 1000,
            "sys_ms": (after.ru_stime - before.ru_stime) * 1000,
            # ru_maxrss of children is the largest child so far, in KiB.
            "peak_rss_mib": after.ru_maxrss / 1024,
        }
    finally:
        subprocess.run(["ip", "netns", "delete", ns])


def bench(binary, services, endpoints, baselines):
    tag = f"{services}x{endpoints}"
    ours_nft = os.path.join(RESULTS, f"ours-{tag}.nft")
    kp_nft = os.path.join(RESULTS, f"kube-proxy-{tag}.nft")
    js = os.path.join(RESULTS, f"nftproxy-{tag}.json")
    print(f"== {services} services x {endpoints} endpoints", flush=True)
    run([binary, "bench", "--services", str(services), "--endpoints-per-service", str(endpoints),
         "--apply", "--json", js, "--emit-nft", ours_nft, "--emit-kube-proxy", kp_nft])
    with open(js) as f:
        result = json.load(f)
    if baselines:
        print("   baseline: nft -f of nftproxy's rule set", flush=True)
        result["baseline_nft_ours"] = nft_load_baseline(ours_nft, "ours")
        print("   baseline: nft -f of the kube-proxy-shaped rule set", flush=True)
        result["baseline_nft_kubeproxy"] = nft_load_baseline(kp_nft, "kp")
    for p in (ours_nft, kp_nft):
        os.remove(p)
    return result


def table(results):
    lines = [
        "| services × endpoints | decode | resolve | compile | render | encode | full apply | partial (1 endpoint) | no change | nftproxy peak RSS | `nft -f` same rules | `nft -f` kube-proxy shape | full apply vs kube-proxy shape |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        p = r["phases_ms"]
        ours = r.get("baseline_nft_ours", {}).get("wall_ms")
        kp = r.get("baseline_nft_kubeproxy", {}).get("wall_ms")
        full = p.get("apply full")
        ratio = f"{kp / full:.1f}× faster" if kp and full else "—"

        def ms(v):
            if v is None:
                return "—"
            return f"{v:.1f} ms" if v < 10_000 else f"{v / 1000:.1f} s"

        lines.append(
            f"| {r['services']:,} × {r['endpoints_per_service']:,} | {ms(p.get('decode'))} | {ms(p.get('resolve'))} | "
            f"{ms(p.get('compile'))} | {ms(p.get('render'))} | {ms(p.get('encode'))} | {ms(full)} | "
            f"{ms(p.get('apply partial'))} | {ms(p.get('apply no change'))} | {r['peak_rss_mib']:.0f} MiB | "
            f"{ms(ours)} | {ms(kp)} | {ratio} |")
    return "\n".join(lines) + "\n"


def chart(results, path):
    """Log-log SVG: milliseconds per phase against number of services (written by hand, no plotting library)."""
    import math
    series = ["decode", "resolve", "compile", "render", "encode", "apply full", "apply partial"]
    extra = {"nft -f kube-proxy shape": "baseline_nft_kubeproxy", "nft -f same rules": "baseline_nft_ours"}
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
    pts = {}
    rs = [r for r in results if r["endpoints_per_service"] == 10]
    for s in series:
        pts[s] = [(r["services"], r["phases_ms"][s]) for r in rs if r["phases_ms"].get(s)]
    for name, key in extra.items():
        pts[name] = [(r["services"], r[key]["wall_ms"]) for r in rs if key in r]
    allx = [x for v in pts.values() for x, _ in v]
    ally = [y for v in pts.values() for _, y in v if y > 0]
    if not allx or not ally:
        return
    W, H, L, B, T, R = 760, 460, 70, 50, 30, 230
    x0, x1 = math.log10(min(allx)) - 0.1, math.log10(max(allx)) + 0.1
    y0, y1 = math.floor(math.log10(min(ally))), math.ceil(math.log10(max(ally)))

    def X(v):
        return L + (math.log10(v) - x0) / (x1 - x0) * (W - L - R)

    def Y(v):
        return H - B - (math.log10(max(v, 10 ** y0)) - y0) / (y1 - y0) * (H - B - T)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{L}" y="18" font-size="14">nftproxy: time per phase vs services (10 endpoints each), log-log</text>']
    for e in range(y0, y1 + 1):
        y = Y(10 ** e)
        out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#ddd"/>')
        label = f"{10 ** e:g} ms" if e < 3 else f"{10 ** (e - 3):g} s"
        out.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for x in sorted(set(allx)):
        out.append(f'<line x1="{X(x):.1f}" y1="{T}" x2="{X(x):.1f}" y2="{H - B}" stroke="#eee"/>')
        out.append(f'<text x="{X(x):.1f}" y="{H - B + 16}" text-anchor="middle">{x:,}</text>')
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">services</text>')
    for i, (name, v) in enumerate(pts.items()):
        c = colors[i % len(colors)]
        dash = ' stroke-dasharray="5,4"' if name in extra else ""
        if len(v) > 1:
            d = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in v)
            out.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
        for x, y in v:
            out.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="3" fill="{c}"/>')
        ly = T + 10 + i * 20
        out.append(f'<line x1="{W - R + 15}" y1="{ly}" x2="{W - R + 40}" y2="{ly}" stroke="{c}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{W - R + 46}" y="{ly + 4}">{name}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 50000])
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--skip-wide", action="store_true", help="skip 1 service x 1000 endpoints")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the apply phases and baselines use network namespaces")
    os.makedirs(RESULTS, exist_ok=True)
    run(["swift", "build", "-c", "release", "--product", "nftproxy"], cwd=ROOT)
    binary = os.path.join(ROOT, ".build", "release", "nftproxy")
    results = [bench(binary, n, args.endpoints, not args.no_baselines) for n in args.sizes]
    if not args.skip_wide:
        results.append(bench(binary, 1, 1000, not args.no_baselines))
    with open(os.path.join(RESULTS, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    md = table(results)
    with open(os.path.join(RESULTS, "results.md"), "w") as f:
        f.write(md)
    chart(results, os.path.join(RESULTS, "chart.svg"))
    print(md)


if __name__ == "__main__":
    main()
