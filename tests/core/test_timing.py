"""The latency harness: timing loop, stopping rules, percentiles, memory, batch sweep."""

from __future__ import annotations

import math
import time

import pytest
import torch

from playground.core.timing import (
    CPU_FLAGS,
    BenchSpec,
    LatencyStats,
    batch_sweep,
    hardware_info,
    measure_latency,
    measure_peak_memory,
    tile_batch,
    torch_threads,
)
from playground.errors import ConfigError

FAST = BenchSpec(warmup=1, min_iters=5, min_seconds=0.0, max_seconds=2.0)


def sleep_2ms(x):
    time.sleep(0.002)
    return x


def test_measure_latency_of_a_2ms_sleep():
    spec = BenchSpec(warmup=2, min_iters=30, min_seconds=0.05, max_seconds=5.0)
    stats = measure_latency(sleep_2ms, torch.zeros(4, 3), spec)
    assert 2.0 <= stats.p50_ms <= 4.0
    assert stats.p50_ms <= stats.p90_ms <= stats.p99_ms
    assert stats.iters >= 30 and stats.batch == 4
    assert stats.throughput == pytest.approx(4 / (stats.mean_ms / 1000))
    assert set(stats.to_dict()) == {
        "batch",
        "iters",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "mean_ms",
        "std_ms",
        "throughput",
    }


def test_measure_latency_runs_until_min_seconds():
    start = time.perf_counter()
    stats = measure_latency(
        lambda x: x + 1, torch.zeros(2), BenchSpec(warmup=0, min_iters=5, min_seconds=0.1)
    )
    assert time.perf_counter() - start >= 0.1
    assert stats.iters > 5


def test_measure_latency_stops_at_max_seconds():
    spec = BenchSpec(warmup=0, min_iters=1000, min_seconds=0.0, max_seconds=0.3)
    start = time.perf_counter()
    stats = measure_latency(lambda x: time.sleep(0.05), torch.zeros(1), spec)
    assert time.perf_counter() - start < 1.5
    # every call sleeps >= 50 ms, so the 0.3 s cap allows at most 7 timed calls
    # (0.3 / 0.05 + the one that crosses it)
    assert 1 <= stats.iters <= 7 and stats.mean_ms >= 50.0  # the count actually timed, not min_iters


def test_latency_stats_percentiles_interpolate_linearly():
    stats = LatencyStats.from_times(2, [1.0, 2.0, 3.0, 4.0])
    assert stats.p50_ms == pytest.approx(2.5) and stats.p90_ms == pytest.approx(3.7)
    assert stats.mean_ms == pytest.approx(2.5) and stats.throughput == pytest.approx(800.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"warmup": -1},
        {"min_iters": 0},
        {"min_seconds": -1.0},
        {"max_seconds": 0.0},
        {"min_seconds": 5.0, "max_seconds": 1.0},
        {"threads": -2},
        {"warmup": 1.5},
        {"min_iters": True},
        {"max_seconds": math.nan},
    ],
)
def test_bench_spec_rejects_nonsense(kwargs):
    with pytest.raises(ConfigError):
        BenchSpec(**kwargs)


def test_batch_sweep_one_entry_per_batch_size():
    images = torch.arange(3.0).view(3, 1, 1, 1)
    calls = []
    result = batch_sweep(lambda x: calls.append(len(x)), images, [1, 4, 7], FAST)
    assert list(result) == [1, 4, 7]
    assert [stats.batch for stats in result.values()] == [1, 4, 7]
    assert set(calls) == {1, 4, 7}
    assert tile_batch(images, 7).flatten().tolist() == [0, 1, 2, 0, 1, 2, 0]
    with pytest.raises(ConfigError):
        batch_sweep(lambda x: x, images, [0], FAST)


def test_hardware_info_keys():
    info = hardware_info()
    for key in ("cpu", "logical_cores", "torch_threads", "torch_version", "cpu_flags"):
        assert key in info
    assert info["torch_version"] == torch.__version__
    if info["cpu_flags"]:  # empty off Linux
        assert set(info["cpu_flags"]) == set(CPU_FLAGS)
        assert all(isinstance(v, bool) for v in info["cpu_flags"].values())
    assert ("gpu" in info) == torch.cuda.is_available()


def test_torch_threads_sets_and_restores():
    before = torch.get_num_threads()
    other = 2 if before != 2 else 1
    with torch_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(other):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with torch_threads(0):
        assert torch.get_num_threads() == before


def test_measure_peak_memory_sees_a_200mb_tensor_and_not_a_noop():
    grows = measure_peak_memory(lambda x: torch.ones(50 * 1024 * 1024), torch.zeros(1))  # 200 MiB
    assert grows >= 100
    assert measure_peak_memory(lambda x: x, torch.zeros(1)) < 20


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_latency_and_memory():
    stats = measure_latency(lambda x: x @ x, torch.randn(256, 256), FAST, device="cuda")
    assert stats.iters >= 5 and stats.p50_ms > 0
    grows = measure_peak_memory(lambda x: torch.ones(50 * 1024 * 1024, device="cuda"), torch.zeros(1), "cuda")
    assert 190 <= grows <= 260
