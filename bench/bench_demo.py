"""Benchmark ``tierdesk demo``: wall time, peak RSS and the split by phase.

    python bench/bench_demo.py [CUSTOMERS ...]     (default: 20000 100000 1000000)

Each size runs the real command (``tierdesk demo --customers N --no-open
--fresh --db TMP``) in a child process of its own, so the peak RSS is that
run's alone; the child also reports the phases ``generate_demo`` timed.
Target (issue 2): 1M customers (~10M orders) in <= 60 s with peak RSS <= 3 GB,
the segment engine's refresh included, so generating should take <= 40 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(customers: int, db: str, report: str) -> None:
    """Run the command in this process, keeping the summary generate_demo returns."""
    import core.demo
    from console.cli import app

    summaries = []
    generate = core.demo.generate_demo

    def keep(*args, **kwargs):
        summaries.append(generate(*args, **kwargs))
        return summaries[-1]

    core.demo.generate_demo = keep
    try:
        app(["demo", "--customers", str(customers), "--no-open", "--fresh", "--db", db], standalone_mode=False)
    finally:
        if summaries:
            summary = summaries[-1]
            Path(report).write_text(json.dumps({
                "customers": summary.customers, "orders": summary.orders, "events": summary.events,
                "consent_events": summary.consent_events, "seconds": summary.seconds, "phases": summary.phases,
            }))


def measure(customers: int, directory: Path) -> dict:
    db, report = directory / f"demo-{customers}.db", directory / f"demo-{customers}.json"
    env = {**os.environ, "TIERDESK_NO_PROGRESS": "1"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", str(customers), str(db), str(report)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"tierdesk demo --customers {customers} failed")
    result = json.loads(report.read_text())
    result.update(wall=wall, rss_mb=usage.ru_maxrss / 1024, cpu=usage.ru_utime + usage.ru_stime,
                  size_mb=db.stat().st_size / 2**20)
    for name in (db, db.with_suffix(".toml"), report):
        name.unlink(missing_ok=True)
    return result


def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory(prefix="tierdesk-bench-", dir=ROOT / "bench") as tmp:
        results = [measure(size, Path(tmp)) for size in sizes]
    print(f"{'customers':>10} {'orders':>11} {'events':>10} {'wall s':>7} {'cpu s':>7} "
          f"{'peak RSS MB':>12} {'file MB':>8}")
    for r in results:
        print(f"{r['customers']:>10,} {r['orders']:>11,} {r['events']:>10,} {r['wall']:>7.1f} {r['cpu']:>7.1f} "
              f"{r['rss_mb']:>12,.0f} {r['size_mb']:>8,.0f}")
    print()
    phases = list(dict.fromkeys(name for r in results for name in r["phases"]))
    print(f"{'phase (s)':<40}" + "".join(f"{r['customers']:>12,}" for r in results))
    for phase in phases:
        print(f"{phase:<40}" + "".join(f"{r['phases'].get(phase, 0.0):>12.2f}" for r in results))
    print("(generate and the aside writer run on other threads, overlapping the main thread's phases)")
    print()
    print("On a machine shared with other work the wall time stretches; unloaded it approaches")
    print("max(main thread CPU, all CPU / 2):")
    for r in results:
        main_cpu = r["phases"].get("cpu: main thread", 0.0)
        print(f"{r['customers']:>10,}: main thread {main_cpu:.1f} s CPU, all threads {r['cpu']:.1f} s CPU "
              f"-> about {max(main_cpu, r['cpu'] / 2):.1f} s unloaded")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        main([int(arg) for arg in sys.argv[1:]] or [20_000, 100_000, 1_000_000])
