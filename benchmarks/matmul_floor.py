"""The arithmetic floor of the replay-based updates: fp32 and bf16-autocast matmul throughput
on this machine, at 1 and 2 torch threads (quoted in BENCHMARKS.md section 5).

    python benchmarks/matmul_floor.py
"""
import time

import torch


def per_call_us(fn, n=1000):
    for _ in range(100):
        fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1e6


def main():
    x, w, b = torch.randn(256, 256), torch.randn(256, 256), torch.randn(256)
    flops = 2 * 256 ** 3
    for threads in (1, 2):
        torch.set_num_threads(threads)
        fp32 = per_call_us(lambda: torch.addmm(b, x, w))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = per_call_us(lambda: torch.addmm(b, x, w))
        print(f"{threads} thread(s): 256^3 addmm fp32 {fp32:.0f} us ({flops / fp32 / 1e3:.0f} GFLOP/s), "
              f"bf16 autocast {bf16:.0f} us")


if __name__ == "__main__":
    main()
