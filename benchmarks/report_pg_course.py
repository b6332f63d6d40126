"""Markdown table of benchmarks/results/pg_course.json (mean over seeds, per-seed values)."""
import json
import sys
from collections import defaultdict

path = sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/pg_course.json"
data = json.load(open(path))
groups = defaultdict(list)
for r in data["results"]:
    groups[(r["group"], r["name"])].append(r)
print("| group | setting | algo / env | steps | final eval (mean; per seed) | best train avg (mean; per seed) |")
print("|---|---|---|---:|---|---|")
for (g, name), rs in groups.items():
    ok = [r for r in rs if "error" not in r]
    if not ok:
        print(f"| {g} | {name} | failed: {rs[0]['error']} | | | |")
        continue
    ev = [r["eval_return_mean"] for r in ok]
    best = [r["train_return_best"] for r in ok]
    fmt = lambda xs: f"{sum(xs) / len(xs):.1f}; " + ", ".join(f"{x:.0f}" for x in xs)  # noqa: E731
    print(f"| {g} | {name} | {ok[0]['algo']} {ok[0]['env']} | {ok[0]['steps']} | {fmt(ev)} | {fmt(best)} |")
