"""
Student latency: onnxruntime vs the same model in torch eager, batch 1, one thread.

Both run in the same process on the same inputs (all modalities available), interleaved in
rounds so that machine noise hits both alike; the ratio of medians is the headline.
"""
import time
from typing import Dict

import numpy as np
from softmaint_core.metrics import percentiles
from softmaint_core.spec import MASK_INPUT, MODALITIES, OUTPUTS
import torch

from .export import example_inputs, session
from .models import OnnxStudent


def _percentiles(samples) -> Dict[str, float]:
    ms = np.asarray(samples) * 1e3
    stats = percentiles(ms)
    return {'p50_ms': stats['p50'], 'p99_ms': stats['p99'], 'mean_ms': float(ms.mean())}


def bench(student, onnx_path, runs: int = 1000, warmup: int = 50, rounds: int = 5) -> Dict:
    """Time both runtimes; returns percentiles per runtime and the p50/p99 speed-up ratios."""
    torch.set_num_threads(1)
    sess = session(onnx_path, threads=1)
    feeds = example_inputs(1, seed=0, masks=np.ones((1, len(MODALITIES)), np.float32))
    wrapper = OnnxStudent(student).eval()
    args = tuple(torch.from_numpy(feeds[n]) for n in MODALITIES + (MASK_INPUT,))
    names = list(OUTPUTS)
    ort_times, torch_times = [], []
    with torch.inference_mode():
        for _ in range(warmup):
            sess.run(names, feeds)
            wrapper(*args)
        per_round = max(1, runs // rounds)
        for _ in range(rounds):
            for _ in range(per_round):
                t0 = time.perf_counter()
                sess.run(names, feeds)
                ort_times.append(time.perf_counter() - t0)
            for _ in range(per_round):
                t0 = time.perf_counter()
                wrapper(*args)
                torch_times.append(time.perf_counter() - t0)
    ort_stats, torch_stats = _percentiles(ort_times), _percentiles(torch_times)
    return {'onnxruntime': ort_stats, 'torch_eager': torch_stats,
            'speedup_p50': torch_stats['p50_ms'] / ort_stats['p50_ms'],
            'speedup_p99': torch_stats['p99_ms'] / ort_stats['p99_ms'],
            'runs': len(ort_times), 'members': len(student.members)}


def format_bench(result: Dict) -> str:
    """One readable block for the terminal and the docs."""
    o, t = result['onnxruntime'], result['torch_eager']
    return (f"batch 1, 1 thread, {result['runs']} runs each, K={result['members']} members\n"
            f"onnxruntime  p50 {o['p50_ms']:.3f} ms  p99 {o['p99_ms']:.3f} ms\n"
            f"torch eager  p50 {t['p50_ms']:.3f} ms  p99 {t['p99_ms']:.3f} ms\n"
            f"speed-up (torch / onnxruntime): p50 {result['speedup_p50']:.2f}x  "
            f"p99 {result['speedup_p99']:.2f}x")
