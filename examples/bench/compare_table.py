#!/usr/bin/python3
"""Summarise a run_compare.sh log: samples/s of libsae and PyTorch, ratio, roofline.

Log lines are "<tag> <program output>", tags:
  roof:<cfg>            bench_sgemm (ROOFLINE ... lines)
  sae:<cfg>:<arch>      libsae bench_train        torch:<cfg>:<arch>  torch_ref.py
  step:<cfg>:<arch>     libsae sae_step_rate (timed like torch_ref.py, with CPU time)
  <arch> relu+<n>       ReLU timed after n untimed training steps (run_compare.sh -W n)
  <arch> relu~<n>       ReLU over a whole run of n steps from initialisation (-R n)
  sae:gen:<spec>        libsae bench_toy          torch:gen:<spec>    torch_ref.py --mode gen
  thr<T>:medium:<arch>  bench_train with T threads
  thrstep<T>:medium:<arch>  sae_step_rate with T threads (more steps, no generation)
  saetoy                bench_toy's table (rows "d=.. N=.. ~k active bern+u x <thr> <rate> <cpu>")
A tag may end in "@<n>" (run n of a repeated measurement, run_compare.sh -r): each run's
last throughput is its summary, and the best run of a tag is taken.
Throughput is read from "samples_per_s=X", "samples/s=X" or "X samples/s"; the per-CPU-second
rate, when printed, from "cpu_samples_per_s=X". The wall-clock table compares bench_train
(generation included) and sae_step_rate (pre-generated batches, timed like torch_ref) with
torch_ref; the CPU-time table compares sae_step_rate, torch_ref and bench_sgemm's ceilings
per CPU-second, which stays steady when other jobs share the machine.
Usage: compare_table.py LOG [THREADS]
"""
import re
import sys

RATE_PATTERNS = [
    re.compile(r"samples_per_s[=:]\s*([0-9.eE+]+)"),
    re.compile(r"samples/s[=:]\s*([0-9.eE+]+)"),
    re.compile(r"([0-9.eE+]+)\s*samples/s"),
]
KV = re.compile(r"(\w+)=([^\s]+)")
CPU_RATE = re.compile(r"cpu_samples_per_s[=:]\s*([0-9.eE+]+)")
TOY_ROW = re.compile(r"d=(\d+) N=(\d+) ~\S+ active\s+bern\+u\s+x\s+(\d+)\s+([0-9.]+)\s+([0-9.]+)")


def rate_of(line):
    for pattern in RATE_PATTERNS:
        m = pattern.search(line)
        if m:
            try:
                return float(m.group(1))
            except ValueError:
                pass
    return None


def parse(path, threads):
    rates, cpu_rates, roofs = {}, {}, {}
    with open(path) as f:
        for raw in f:
            if raw.startswith("#") or " " not in raw:
                continue
            tag, line = raw.rstrip("\n").split(" ", 1)
            if tag.startswith("roof:") and line.startswith("ROOFLINE"):
                roofs[tag[5:]] = {k: v for k, v in KV.findall(line)}
                continue
            if tag == "saetoy":
                m = TOY_ROW.search(line)
                if m and int(m.group(3)) == threads:
                    key = f"sae:gen:d{m.group(1)}N{m.group(2)}"
                    rates[key], cpu_rates[key] = float(m.group(4)), float(m.group(5))
                continue
            rate = rate_of(line)
            # The last throughput a program prints is its summary for the whole run.
            if rate is not None:
                rates[tag] = rate
            m = CPU_RATE.search(line)
            if m:
                cpu_rates[tag] = float(m.group(1))
    return best_runs(rates), best_runs(cpu_rates), roofs


def best_runs(by_tag):
    """The best of the runs <tag>@<n> of each tag (the least disturbed by other jobs)."""
    best = {}
    for tag, value in by_tag.items():
        base = tag.split("@", 1)[0]
        best[base] = max(best.get(base, value), value)
    return best


def fmt(x):
    return "-" if x is None else f"{x:,.0f}"


def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def training_table(rates, cpu_rates, roofs):
    keys = sorted({t.split(":", 1)[1] for t in rates if t.startswith(("sae:", "torch:", "step:"))
                   and not t.split(":")[1] == "gen"}, key=order)
    print("\nTraining, wall clock (samples/s): bench_train (generation included) vs torch_ref")
    print(f"{'config':8} {'arch':10} {'bench_train':>12} {'torch':>12} {'ratio':>8} "
          f"{'step':>12} {'step ratio':>10}")
    for key in keys:
        cfg, arch = key.split(":")
        sae, torch, step = rates.get("sae:" + key), rates.get("torch:" + key), rates.get("step:" + key)
        print(f"{cfg:8} {arch:10} {fmt(sae):>12} {fmt(torch):>12} {ratio(sae, torch):>8} "
              f"{fmt(step):>12} {ratio(step, torch):>10}")
    print("\nTraining, per CPU-second (samples/s; steady on a shared machine): sae_step_rate vs")
    print(" torch_ref, and the sgemm ceilings: dense = 5 GEMMs of 2ndL flops, enc = encoder alone")
    print(f"{'config':8} {'arch':10} {'libsae':>12} {'torch':>12} {'ratio':>8} "
          f"{'roof dense':>12} {'roof enc':>12} {'of dense':>9} {'of enc':>8}")
    for key in keys:
        cfg, arch = key.split(":")
        sae, torch = cpu_rates.get("step:" + key), cpu_rates.get("torch:" + key)
        roof = roofs.get(cfg, {})
        dense = float(roof["cpu_relu_samples_per_s_max"]) if "cpu_relu_samples_per_s_max" in roof else None
        enc = float(roof["cpu_topk_samples_per_s_max"]) if "cpu_topk_samples_per_s_max" in roof else None
        print(f"{cfg:8} {arch:10} {fmt(sae):>12} {fmt(torch):>12} {ratio(sae, torch):>8} "
              f"{fmt(dense):>12} {fmt(enc):>12} {pct(sae, dense):>9} {pct(sae, enc):>8}")


def pct(a, b):
    return "-" if a is None or b is None or b == 0 else f"{100 * a / b:.0f}%"


def generator_table(rates, cpu_rates):
    specs = sorted({t.split(":", 2)[2] for t in rates if t.split(":")[1:2] == ["gen"]})
    if not specs:
        return
    print("\nGenerator (samples/s)")
    print(f"{'config':14} {'libsae':>12} {'torch dense':>12} {'ratio':>8} {'cpu ratio':>10}")
    for spec in specs:
        sae, torch = rates.get("sae:gen:" + spec), rates.get("torch:gen:" + spec)
        cpu = ratio(cpu_rates.get("sae:gen:" + spec), cpu_rates.get("torch:gen:" + spec))
        print(f"{spec:14} {fmt(sae):>12} {fmt(torch):>12} {ratio(sae, torch):>8} {cpu:>10}")


def thread_table(rates, prefix, title):
    archs = sorted({t.split(":")[2] for t in rates if re.match(prefix + r"\d:", t)})
    if not archs:
        return
    print(f"\nThreads, medium, {title} (libsae samples/s)")
    print(f"{'arch':10} {'1 thread':>12} {'2 threads':>12} {'speedup':>8}")
    for arch in archs:
        one, two = rates.get(f"{prefix}1:medium:{arch}"), rates.get(f"{prefix}2:medium:{arch}")
        print(f"{arch:10} {fmt(one):>12} {fmt(two):>12} {ratio(two, one):>8}")


def order(key):
    cfg, arch = key.split(":")
    return ({"tiny": 0, "medium": 1, "large": 2}.get(cfg, 3), cfg,
            {"relu": 0, "topk": 2, "batchtopk": 3}.get(arch, 1 if arch.startswith("relu") else 4),
            arch)


def main(path, threads):
    rates, cpu_rates, roofs = parse(path, threads)
    training_table(rates, cpu_rates, roofs)
    generator_table(rates, cpu_rates)
    thread_table(rates, "thr", "bench_train")
    thread_table(rates, "thrstep", "sae_step_rate")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
