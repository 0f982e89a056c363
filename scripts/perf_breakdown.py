#!/usr/bin/env python3
"""Share of CPU samples per model component, from a `perf` profile with call stacks.

Record the full bench on the dev-profile binary (symbols; dependencies are optimised), then
print the stacks and classify them:

    cargo build -p blt-cli
    perf record -F 120 --call-graph dwarf,32768 -o bench.data \
        target/debug/blt-cli -q bench --config configs/bench.toml --skip-generation
    perf script -i bench.data -F tid,time,ip,sym > bench.txt
    python3 scripts/perf_breakdown.py bench.txt

The training window runs from the first to the last main-thread sample inside the optimizer
or the loss; the forward window is everything after it. Each sample goes to the first
matching rule below, read against its whole stack (leaf to root), so that a worker thread's
`gemm` sample under the attention kernel counts as attention, not as a linear layer.
"""

import collections
import re
import sys

# (category, test on the stack's frames joined by " | ", test on the leaf frame)
KERNEL_RULES = [
    ("attention: block products", ("kernels::ndarray::flash", "kernels::ndarray::attention"), "gemm"),
    ("attention: softmax, masks, rest", ("kernels::ndarray::flash", "kernels::ndarray::attention"), None),
    ("norms (RMSNorm)", ("kernels::ndarray::rms_norm",), None),
    ("RoPE", ("kernels::ndarray::rope",), None),
    ("SwiGLU gate", ("kernels::ndarray::swiglu",), None),
    ("optimizer (AdamW)", ("kernels::ndarray::adamw", "FusedAdamW", "burn_optim"), None),
    ("matmul (linear layers)", ("gemm",), None),
    ("zero-filled outputs", ("RepeatNProducer",), None),
    ("loss (cross-entropy)", ("cross_entropy", "blt_model::loss"), None),
    ("embeddings (gathers, scatters)", ("embedding", "gather", "scatter"), None),
]
COPY_LEAVES = ("memmove", "memcpy", "memset", "to_vec_mapped", "concatenate", "into_owned", "to_owned")
WAIT_LEAVES = ("sched_yield", "futex", "wait_until", "__schedule", "finish_task_switch")


def read_samples(path):
    """(thread id, time, frames leaf first) for every sample of `perf script`."""
    samples, current = [], None
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if not line.strip():
                if current:
                    samples.append(current)
                current = None
            elif not line[0].isspace() or re.match(r"\s*\d+\s+[\d.]+:", line):
                match = re.match(r"\s*(\d+)\s+([\d.]+):", line)
                if match:
                    current = (int(match.group(1)), float(match.group(2)), [])
            elif current is not None:
                parts = line.strip().split(" ", 1)
                if len(parts) == 2:
                    current[2].append(parts[1])
    if current:
        samples.append(current)
    return samples


def burn_op(frames):
    """The Burn backend op a copy or elementwise sample sits in, when a frame names one."""
    for frame in frames:
        match = re.search(r"burn_ndarray::ops::[\w:]*?(\w+)$", re.sub(r"<.*?>|\(.*?\)", "", frame))
        if match:
            return match.group(1)
    return "?"


def classify(frames):
    joined = " | ".join(frames)
    leaf = frames[0] if frames else ""
    for name, anywhere, leaf_has in KERNEL_RULES:
        if any(key in joined for key in anywhere) and (leaf_has is None or leaf_has in leaf):
            return name
    if any(key in leaf for key in WAIT_LEAVES):
        return "threads waiting"
    if "exc_page_fault" in joined or "clear_page" in joined:
        return "page faults"
    if any(key in leaf for key in COPY_LEAVES) or "reshape" in joined or "expand" in joined:
        return f"copies ({burn_op(frames)})"
    if "burn_ndarray" in joined or "macerator" in joined or "ndarray::" in joined:
        return f"Burn's other ops ({burn_op(frames)})"
    if "burn_autodiff" in joined:
        return "autodiff bookkeeping"
    return "the rest"


def main(path):
    samples = read_samples(path)
    main_thread = samples[0][0]
    marks = [
        time
        for thread, time, frames in samples
        if thread == main_thread and any("FusedAdamW" in f or "blt_model::loss" in f for f in frames)
    ]
    if not marks:
        sys.exit("no training step found: was the bench recorded with --call-graph?")
    start, end = min(marks), max(marks)
    last = max(time for _, time, _ in samples)
    for window, (low, high) in [("training", (start, end)), ("forward", (end, last))]:
        counts = collections.Counter()
        detail = collections.Counter()
        total = 0
        for _, time, frames in samples:
            if low <= time <= high:
                name = classify(frames)
                total += 1
                counts[name.split(" (")[0] if name.startswith(("copies", "Burn's")) else name] += 1
                if name.startswith(("copies", "Burn's")):
                    detail[name] += 1
        print(f"{window}: {total} samples over {high - low:.1f} s")
        for name, count in counts.most_common():
            print(f"  {100 * count / total:5.1f}%  {name}")
        for name, count in detail.most_common(6):
            print(f"          {100 * count / total:5.1f}%  {name}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
