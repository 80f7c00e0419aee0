"""The latency benchmark harness: how long one forward call takes, and how much memory it needs.

``measure_latency`` runs ``spec.warmup`` untimed calls (compilation, allocator warm-up and
oneDNN primitive caching happen there), then timed calls until *both* ``min_iters`` calls and
``min_seconds`` have passed, stopping at ``max_seconds`` whatever the count (the number of calls
actually timed is recorded in ``LatencyStats.iters``). Each call is timed on its own:

- CPU: wall clock around the call with ``time.perf_counter_ns`` (the call is synchronous);
- CUDA: a ``torch.cuda.Event(enable_timing=True)`` pair around the call, then
  ``torch.cuda.synchronize()`` so the kernels have finished before the next call starts.

Everything runs under ``torch.inference_mode()``. Percentiles are linearly interpolated
(``numpy.percentile``); throughput is ``batch / mean`` in items per second.

``measure_peak_memory`` reports the peak memory *growth* during a few calls: on CUDA the
caching allocator's ``max_memory_allocated`` above what was allocated before the calls; on CPU
the peak resident-set size (``/proc/self/statm``, sampled every ~1 ms by a background thread)
above the RSS before the calls. The CPU number is approximate and process-wide: memory that
the allocator kept from earlier calls is not counted again, other threads' allocations are, and
a spike shorter than the sampling period can be missed.

Timings on a shared machine are noisy; ``hardware_info`` records what they were taken on.
"""

from __future__ import annotations

import math
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from playground.errors import ConfigError

CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16", "avx_vnni")
MIB = 1024 * 1024


def _read_cpuinfo() -> tuple[str, set[str] | None]:
    """CPU model name and the set of CPU flags from /proc/cpuinfo (flags None off Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), None
    name, flags = platform.processor() or platform.machine(), set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            name = value.strip()
        elif key.strip() == "flags":
            flags.update(value.split())
    return name, flags


def cpu_flags() -> dict[str, bool]:
    """Which of ``CPU_FLAGS`` this CPU has (an empty dict where /proc/cpuinfo is missing)."""
    _, flags = _read_cpuinfo()
    return {} if flags is None else {flag: flag in flags for flag in CPU_FLAGS}


def hardware_info() -> dict[str, Any]:
    """What a benchmark ran on: CPU, cores, torch threads and version, SIMD flags, GPU if any."""
    name, _ = _read_cpuinfo()
    info: dict[str, Any] = {
        "cpu": name,
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_flags": cpu_flags(),
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda_version"] = torch.version.cuda
    return info


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class BenchSpec:
    """How long to measure: warm-up calls, then at least ``min_iters`` calls and ``min_seconds``,
    at most ``max_seconds``; ``threads`` torch CPU threads while measuring (0 = leave as is)."""

    warmup: int = 10
    min_iters: int = 50
    min_seconds: float = 1.0
    max_seconds: float = 30.0
    threads: int = 0

    def __post_init__(self) -> None:
        for name, minimum in (("warmup", 0), ("min_iters", 1), ("threads", 0)):
            value = getattr(self, name)
            if not _is_int(value) or value < minimum:
                raise ConfigError(f"BenchSpec.{name} must be an integer >= {minimum}, got {value!r}")
        for name in ("min_seconds", "max_seconds"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0:
                raise ConfigError(f"BenchSpec.{name} must be a number >= 0, got {value!r}")
        if self.max_seconds <= 0 or self.min_seconds > self.max_seconds:
            raise ConfigError(
                f"BenchSpec needs 0 < max_seconds and min_seconds <= max_seconds, got "
                f"min_seconds={self.min_seconds!r}, max_seconds={self.max_seconds!r}"
            )


@dataclass
class LatencyStats:
    """Per-call latency of one batch size, in milliseconds; throughput in items per second."""

    batch: int
    iters: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    throughput: float  # items per second = batch / mean

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @classmethod
    def from_times(cls, batch: int, times_ms: Sequence[float]) -> LatencyStats:
        """Summarise per-call times (ms) of calls on ``batch`` items."""
        times = np.asarray(times_ms, dtype=np.float64)
        p50, p90, p99 = np.percentile(times, [50, 90, 99])
        mean = float(times.mean())
        std = float(times.std(ddof=1)) if len(times) > 1 else 0.0
        throughput = batch / (mean / 1000.0) if mean > 0 else math.inf
        return cls(batch, len(times), float(p50), float(p90), float(p99), mean, std, throughput)


@contextmanager
def torch_threads(n: int):
    """Run the block with ``torch.set_num_threads(n)`` and restore the old count (0: no change)."""
    if not _is_int(n) or n < 0:
        raise ConfigError(f"threads must be an integer >= 0, got {n!r}")
    if n == 0:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _time_cpu_ms(fn: Callable[[Tensor], Any], inputs: Tensor) -> float:
    start = time.perf_counter_ns()
    fn(inputs)
    return (time.perf_counter_ns() - start) / 1e6


def _time_cuda_ms(fn: Callable[[Tensor], Any], inputs: Tensor) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn(inputs)
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_latency(
    fn: Callable[[Tensor], Any],
    inputs: Tensor,
    spec: BenchSpec = BenchSpec(),
    device: str | torch.device = "cpu",
) -> LatencyStats:
    """Latency percentiles of ``fn(inputs)`` (inputs moved to ``device``), as described above."""
    device = torch.device(device)
    inputs = inputs.to(device)
    time_call = _time_cuda_ms if device.type == "cuda" else _time_cpu_ms
    times: list[float] = []
    with torch_threads(spec.threads), torch.inference_mode():
        for _ in range(spec.warmup):
            fn(inputs)
        _synchronize(device)
        start = time.perf_counter()
        while True:
            times.append(time_call(fn, inputs))
            elapsed = time.perf_counter() - start
            if elapsed >= spec.max_seconds or (len(times) >= spec.min_iters and elapsed >= spec.min_seconds):
                break
    return LatencyStats.from_times(int(inputs.shape[0]), times)


def _rss_bytes() -> int | None:
    """Resident-set size of this process from /proc/self/statm, None where unavailable."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class _RssSampler(threading.Thread):
    """Background thread recording the highest RSS seen until ``stop`` (every ``period`` s)."""

    def __init__(self, period: float = 0.001) -> None:
        super().__init__(daemon=True)
        self.period, self.peak, self._done = period, _rss_bytes() or 0, threading.Event()

    def sample(self) -> None:
        self.peak = max(self.peak, _rss_bytes() or 0)

    def run(self) -> None:
        while not self._done.wait(self.period):
            self.sample()

    def stop(self) -> int:
        self._done.set()
        self.join()
        self.sample()
        return self.peak


def _cpu_peak_growth_mib(fn: Callable[[Tensor], Any], inputs: Tensor, calls: int) -> float:
    baseline = _rss_bytes()
    if baseline is None:
        return math.nan
    sampler = _RssSampler()
    sampler.start()
    try:
        for _ in range(calls):
            output = fn(inputs)
            sampler.sample()  # while the output is still alive
            del output
    finally:
        peak = sampler.stop()
    return max(0, peak - baseline) / MIB


def measure_peak_memory(
    fn: Callable[[Tensor], Any], inputs: Tensor, device: str | torch.device = "cpu", calls: int = 3
) -> float:
    """Peak memory growth (MiB) during ``calls`` calls of ``fn(inputs)``; see the module notes.

    CPU: approximate and process-wide (RSS sampled every ~1 ms); NaN without /proc/self/statm.
    """
    device = torch.device(device)
    inputs = inputs.to(device)
    with torch.inference_mode():
        if device.type != "cuda":
            return _cpu_peak_growth_mib(fn, inputs, calls)
        torch.cuda.synchronize(device)
        baseline = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        for _ in range(calls):
            fn(inputs)
        torch.cuda.synchronize(device)
        return max(0, torch.cuda.max_memory_allocated(device) - baseline) / MIB


def tile_batch(images: Tensor, batch: int) -> Tensor:
    """A batch of ``batch`` items made by repeating ``images`` along dim 0 (then truncating)."""
    if len(images) == 0:
        raise ConfigError("batch_sweep needs at least one image")
    if not _is_int(batch) or batch < 1:
        raise ConfigError(f"batch sizes must be integers >= 1, got {batch!r}")
    repeats = math.ceil(batch / len(images))
    return images.repeat(repeats, *([1] * (images.dim() - 1)))[:batch].contiguous()


def batch_sweep(
    fn: Callable[[Tensor], Any],
    images: Tensor,
    batch_sizes: Sequence[int],
    spec: BenchSpec = BenchSpec(),
    device: str | torch.device = "cpu",
) -> dict[int, LatencyStats]:
    """``measure_latency`` at each batch size, batches tiled from real ``images``."""
    batches = {batch: tile_batch(images, batch) for batch in batch_sizes}
    return {batch: measure_latency(fn, inputs, spec, device) for batch, inputs in batches.items()}
