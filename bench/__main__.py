"""Run the sevis benchmarks: python -m bench [--quick] [--only overhead,peers,stats,latency,startup,distributed,load,folder] [--json FILE]

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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, few repeats (for developing the benchmark)")
    p.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: " + ", ".join(SECTIONS))
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    p.add_argument("--json", help="also write the raw results to this JSON file")
    p.add_argument("--markdown", help="also write the Markdown tables to this file")
    p.add_argument("--sessions", type=int, default=None, help="load: concurrent browser sessions (default 8; --quick 2)")
    p.add_argument("--rounds", type=int, default=None, help="load: uploads per session (default 3; --quick 1)")
    p.add_argument("--images", type=int, default=None, help="folder: images in the labelled folder (default 1500; --quick 150)")
    p.add_argument("--views", default=None,
                   help="load: comma-separated tabs each session opens after its first upload (default: every view)")
    p.add_argument("--soak", type=int, default=None, help="load: sequential uploads of the soak (default 200; --quick 20; 0: none)")
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
            results["load"] = load.run(args.quick, args.threads, args.sessions, args.soak, args.rounds,
                                       views=[v.strip() for v in args.views.split(",")] if args.views else None)
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
