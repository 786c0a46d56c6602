"""Run the sevis benchmarks and print Markdown tables of what they measured.

    python -m bench [--quick] [--only overhead,peers,stats,latency,startup,distributed,load,folder] [--json FILE]

Prints Markdown tables of ratios measured in this one run (same model, batch and inputs per comparison).
Not part of the test suite: nothing here asserts a timing.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

SECTIONS = ("overhead", "peers", "stats", "latency", "startup", "distributed", "load", "folder")


def _ints(text: str | None) -> list[int] | None:
    return [int(x) for x in text.split(",") if x.strip()] if text else None


def _cores(text: str | None) -> set[int] | None:
    """Parse a core list as taskset does: "1", "0,2", "2-7"."""
    if not text:
        return None
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out |= set(range(int(lo), int(hi or lo) + 1))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, few repeats (for developing the benchmark)")
    p.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: " + ", ".join(SECTIONS))
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    p.add_argument("--json", help="also write the raw results to this JSON file")
    p.add_argument("--markdown", help="also write the Markdown tables to this file")
    p.add_argument("--sessions", type=int, default=None,
                   help="load: concurrent protocol-level sessions (default 30; --quick 4)")
    p.add_argument("--sequential", type=int, default=None,
                   help="load: sessions run one at a time for the CPU per interaction (default 5; --quick 2)")
    p.add_argument("--replicas", default=None, help="load: comma-separated replica counts to compare (default 1,2)")
    p.add_argument("--view", default=None, help='load: the view each session opens after its upload (default '
                                                '"Class × depth"; "" for none)')
    p.add_argument("--server-cores", default=None,
                   help="load: cores for the server, e.g. 1 or 2-7 (default: all but the first usable one)")
    p.add_argument("--client-cores", default=None, help="load: cores for the clients (default: the first usable one)")
    p.add_argument("--images", type=int, default=None,
                   help="folder: images in the labelled folder (default 1500; --quick 150)")
    p.add_argument("--soak", type=int, default=None,
                   help="load: sequential uploads of one session after the load (default 0; --quick 10)")
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = set(only) - set(SECTIONS)
    if bad:
        p.error(f"unknown section(s): {', '.join(sorted(bad))}")

    warnings.filterwarnings("ignore")
    import logging
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)

    from . import common, report
    results: dict = {"machine": common.machine(), "argv": sys.argv[1:]}
    print(report.machine(results["machine"]), flush=True)
    t_all = time.perf_counter()
    for section in only:
        t0 = time.perf_counter()
        if section == "overhead":
            from . import overhead
            results["overhead"] = overhead.run(args.quick)
        elif section == "peers":
            from . import peers
            results["peers"] = peers.run(args.quick, args.threads)
        elif section == "stats":
            from . import dataset
            results["stats"] = dataset.run(args.quick, args.threads)
        elif section == "latency":
            from . import latency
            results["latency"] = latency.run(args.quick, args.threads)
        elif section == "startup":
            from . import startup
            results["startup"] = startup.run(args.quick, args.threads)
        elif section == "distributed":
            from . import distributed
            results["distributed"] = distributed.run(args.quick, args.threads)
        elif section == "load":
            from . import load
            results["load"] = load.run(args.quick, args.threads, args.sessions, args.soak,
                                       replicas=_ints(args.replicas), view=args.view, sequential=args.sequential,
                                       server_cores=_cores(args.server_cores), client_cores=_cores(args.client_cores))
        elif section == "folder":
            from . import folder_memory
            results["folder"] = folder_memory.run(args.quick, args.threads, args.images)
        print("\n" + report.section(section, results[section]), flush=True)
        print(f"({section}: {time.perf_counter() - t0:.0f} s)", flush=True)
    results["machine_after"] = common.machine()
    results["total_s"] = time.perf_counter() - t_all
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, default=float)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(report.render(results))
    print(f"\ntotal {results['total_s']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
