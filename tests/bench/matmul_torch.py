"""matmul_torch.py — the PyTorch side of the matmul benchmark: prints 'M N K threads gflops' lines.

Run by tests/bench/bench_matmul.c with /usr/bin/python3 (Debian's torch,
which uses the system BLAS: libopenblas0-openmp must be installed)."""
import sys
import time

import torch


def gflops(m, n, k, threads, reps):
    torch.set_num_threads(threads)
    a = torch.randn(m, k)
    b = torch.randn(k, n)
    torch.mm(a, b)  # warm up
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * m * n * k / best / 1e9


def main():
    threads = [int(t) for t in sys.argv[1].split(",")]
    for spec in sys.argv[2:]:
        m, n, k, reps = (int(x) for x in spec.split("x"))
        for t in threads:
            print(m, n, k, t, "%.2f" % gflops(m, n, k, t, reps), flush=True)


if __name__ == "__main__":
    main()
