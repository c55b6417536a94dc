"""Run every benchmark in bench/ (each ``bench/<name>.py`` but this one and ``_*.py`` helpers),
one after the other so they do not compete for the CPU, and summarize.

    .venv/bin/python bench/run_all.py [--only NAME ...] [--list] [--timeout SECONDS]

A script reports its figures by printing lines ``RESULT {json}``; they are collected and shown
together at the end. Exit status 1 if any script failed or timed out. Record the figures you
measure in bench/RESULTS.md, with the machine they were measured on.
"""

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def scripts() -> list[Path]:
    return sorted(
        path
        for path in BENCH.glob("*.py")
        if path.name != Path(__file__).name and not path.name.startswith("_")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these (file stems)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds allowed per script (default 1800)"
    )
    args = parser.parse_args()

    found = scripts()
    if args.list:
        for path in found:
            print(path.stem)
        return 0
    if args.only:
        unknown = sorted(set(args.only) - {p.stem for p in found})
        if unknown:
            print(f"no such benchmark(s): {', '.join(unknown)}", file=sys.stderr)
            return 2
        found = [p for p in found if p.stem in args.only]

    outcomes: list[tuple[str, str, float, list[dict]]] = []
    for path in found:
        print(f"\n=== {path.stem} ===", flush=True)
        start = time.monotonic()
        results: list[dict] = []
        try:
            process = subprocess.Popen(
                [sys.executable, str(path)],
                cwd=BENCH.parent,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert process.stdout is not None
            # A silent script that hangs must time out too, not only one that keeps printing.
            watchdog = threading.Timer(args.timeout, process.kill)
            watchdog.start()
            for line in process.stdout:
                print(line, end="", flush=True)
                if line.startswith("RESULT "):
                    try:
                        results.append(json.loads(line.removeprefix("RESULT ")))
                    except ValueError:
                        print(f"(unparsable RESULT line from {path.stem})", flush=True)
            code = process.wait()
            timed_out = not watchdog.is_alive() and code < 0
            watchdog.cancel()
            status = "ok" if code == 0 else f"exit {code}"
            if timed_out:
                status = f"timed out after {args.timeout:.0f} s"
        except OSError as exc:
            status = f"could not run: {exc}"
        outcomes.append((path.stem, status, time.monotonic() - start, results))

    print("\n=== summary ===")
    for name, status, seconds, results in outcomes:
        print(f"{name:24s} {status:28s} {seconds:7.1f} s")
        for result in results:
            print("    " + json.dumps(result))
    return 0 if all(status == "ok" for _, status, _, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
