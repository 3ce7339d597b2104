"""`make fuzz`: a long mutation campaign over every target in `targets.py`.

    python -m tests.fuzz.campaign [--examples N] [--seed S] [--out DIR] [target ...]

Each target gets ``N × weight`` inputs (N = ``FUZZ_EXAMPLES``, 100 000 by default): mostly
mutations of its seeds and of the inputs it accepted so far (a bounded pool), some raw random
bytes. An input that raises anything but the parser's documented error, breaks a round trip
or runs longer than the time limit is a failure: it is written to ``DIR/crashes/`` and
counted. Prints inputs, accepted, failures and time per target, writes ``DIR/summary.json``
and exits 1 on any failure (known ones included: they are open bugs).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

from tests.fuzz.mutate import mutate
from tests.fuzz.targets import TARGETS, Target

_POOL = 256  # accepted inputs kept per target for further mutation
_TIME_LIMIT = 5  # seconds per input before it counts as a hang


class Hang(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang(f"input ran longer than {_TIME_LIMIT} s")


def fuzz(target: Target, examples: int, seed: int, crashes: Path) -> dict[str, Any]:
    rng = random.Random(f"{seed}/{target.name}")
    seeds = target.seeds()
    pool = list(seeds)
    tried = accepted = 0
    failures: dict[str, dict[str, Any]] = {}  # one reproducer per distinct error
    slowest = 0.0
    start = time.perf_counter()
    while tried < examples:
        if rng.random() < 0.05:
            data = rng.randbytes(rng.randrange(min(target.max_size, 512)))
        else:
            base = rng.choice(pool) if rng.random() < 0.5 else rng.choice(seeds)
            data = mutate(base, rng, pool, json_keys=target.json_keys, max_size=target.max_size)
        tried += 1
        began = time.perf_counter()
        signal.alarm(_TIME_LIMIT)
        try:
            ok = target.run(data)
        except Exception as exc:
            signal.alarm(0)
            where = traceback.extract_tb(exc.__traceback__)[-1]
            key = f"{type(exc).__name__} at {Path(where.filename).name}:{where.lineno}"
            entry = failures.setdefault(key, {"count": 0, "known": isinstance(exc, target.known)})
            entry["count"] += 1
            if entry["count"] == 1:
                path = crashes / f"{target.name}-{len(failures)}.bin"
                path.write_bytes(data)
                entry.update(input=str(path), message=str(exc)[:300])
            continue
        finally:
            signal.alarm(0)
        slowest = max(slowest, time.perf_counter() - began)
        if ok:
            accepted += 1
            if len(pool) < _POOL:
                pool.append(data)
            else:  # replace a pooled input, never a seed
                pool[len(seeds) + rng.randrange(_POOL - len(seeds))] = data
    return {
        "target": target.name,
        "inputs": tried,
        "accepted": accepted,
        "failures": sum(f["count"] for f in failures.values()),
        "distinct_failures": failures,
        "seconds": round(time.perf_counter() - start, 1),
        "slowest_input_ms": round(slowest * 1000, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="target names (default: all)")
    parser.add_argument(
        "--examples", type=int, default=int(os.environ.get("FUZZ_EXAMPLES", "100000"))
    )
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", "1")))
    parser.add_argument("--out", type=Path, default=Path("fuzz/results"))
    args = parser.parse_args(argv)
    chosen = [t for t in TARGETS if not args.targets or t.name in args.targets]
    crashes = args.out / "crashes"
    crashes.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGALRM, _alarm)
    warnings.simplefilter("error")  # as in `make test` (pyproject: filterwarnings = error)
    results = []
    columns = ("inputs", "accepted", "failures")
    print(
        f"{'target':<18}"
        + "".join(f"{c:>10}" for c in columns)
        + f"{'seconds':>9}{'slowest ms':>12}"
    )
    for target in chosen:
        r = fuzz(target, max(1, int(args.examples * target.weight)), args.seed, crashes)
        results.append(r)
        print(
            f"{r['target']:<18}{r['inputs']:>10}{r['accepted']:>10}{r['failures']:>10}"
            f"{r['seconds']:>9}{r['slowest_input_ms']:>12}",
            flush=True,
        )
        for key, failure in r["distinct_failures"].items():
            known = " (known, xfail)" if failure["known"] else ""
            print(f"    {failure['count']} × {key}{known}: {failure['input']}")
    total = {
        "inputs": sum(r["inputs"] for r in results),
        "failures": sum(r["failures"] for r in results),
        "seconds": round(sum(r["seconds"] for r in results), 1),
        "seed": args.seed,
    }
    (args.out / "summary.json").write_text(
        json.dumps({"total": total, "targets": results}, indent=1)
    )
    print(f"{'total':<18}{total['inputs']:>10}{'':>10}{total['failures']:>10}{total['seconds']:>9}")
    print(f"summary: {args.out / 'summary.json'}")
    return 1 if total["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
