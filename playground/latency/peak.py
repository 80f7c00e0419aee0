"""Against the machine: the hardware's peak arithmetic rate and the share of it each variant reaches.

:func:`cpu_peak` derives a CPU's peak from its /proc/cpuinfo flags, its clock and the cores the
benchmark uses; :func:`gpu_peak` looks a datacenter GPU up in a table of NVIDIA's published figures.
:func:`achieved` turns a model's MACs and a measured p50 into GFLOP/s (GOP/s for int8), and
:func:`share` divides by the peak. Every rate counts one multiply-accumulate as two operations.

Per core and cycle (x86; the derivation, per precision):

- **fp32**: SIMD lanes (16 with ``avx512f``, 8 with ``avx2``/``fma``) x 2 (an FMA is a multiply and an
  add) x 2 FMA units (*assumed*: server cores since Haswell / Skylake-SP Gold and Platinum have two;
  many Xeon Silver/Bronze and client cores have one 512-bit unit, and reach half). AVX-512: 64 FLOP,
  AVX2: 32. Without FMA (``avx`` only: 8 lanes, ``sse``: 4 lanes) one add port and one multiply port
  give lanes x 2: 16 and 8.
- **bf16** with ``avx512_bf16``: ``VDPBF16PS`` on a 512-bit register multiplies 32 bf16 pairs into 16
  fp32 accumulators (32 MACs = 64 FLOP per instruction), on the same two FMA ports: 128 FLOP,
  2x fp32. Without it bf16 is converted and computed in fp32: fp32's rate at best.
- **fp16** with ``avx512_fp16``: ``VFMADDPH`` on 32 fp16 lanes, two ports: 32 x 2 x 2 = 128 FLOP,
  2x fp32. Without it (F16C only converts): fp32's rate at best.
- **int8** with ``avx512_vnni``: ``VPDPBUSD`` on a 512-bit register: each of the 16 int32 lanes adds
  the dot product of 4 u8 x s8 pairs, so 16 x 4 = 64 MACs = 128 ops per instruction; two ports:
  256 ops per cycle = 4 x the fp32 lanes x 2 x 2 units = 4x fp32. ``avx_vnni`` (the 256-bit VEX form):
  8 x 4 x 2 x 2 = 128. Without VNNI, ``avx512bw``/``avx2`` need three instructions
  (``VPMADDUBSW``, ``VPMADDWD``, ``VPADDD``) for the same 4 x lanes MACs: (4/3)x fp32 (85.3 and
  42.7 ops).
- **AMX** (``amx_int8``, ``amx_bf16``, ``amx_fp16``): ``TDPBUSD`` multiplies a 16x64 u8 tile by a
  64x16 s8 tile into 16x16 int32: 16 x 16 x 64 = 16,384 MACs, one every 16 cycles per core = 1,024
  MACs = 2,048 ops per cycle; ``TDPBF16PS``/``TDPFP16PS`` (16 x 16 x 32 = 8,192 MACs per 16 cycles):
  1,024 FLOP per cycle. These are Intel's published Sapphire Rapids figures (2,048 int8 ops and
  1,024 bf16 FLOPs per core per cycle, against 256 int8 ops with AVX-512 VNNI).

``Peak.gflops`` is the best unit per precision (AMX when present: oneDNN runs int8/bf16 convolutions
and matrix multiplies on it); ``Peak.simd_gflops`` the vector units alone (the bar for the "share of
the VNNI int8 peak"). Peak = ops per core per cycle x cores x clock (GHz). The clock is the highest
the core reaches (sysfs ``cpuinfo_max_freq``, else lscpu's "CPU max MHz", else /proc/cpuinfo's
"cpu MHz"), and heavy AVX-512/AMX code runs below it, so the peak is an upper bound. Cores are
``min(threads, physical cores available)``: SMT siblings share their core's FMA units.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from playground.errors import ConfigError
from playground.latency.pick import p50_at

PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "int8")
MAX_FREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
CPUINFO = Path("/proc/cpuinfo")
AMX_INT8_OPS, AMX_BF16_FLOPS = 2048.0, 1024.0  # per core per cycle (see the module notes)
FMA_NOTE = (
    "assumes two {bits}-bit FMA units per core (server cores: Xeon Gold/Platinum, EPYC); a core with one "
    "reaches half this peak"
)


@dataclass
class Peak:
    """Peak GFLOP/s (GOP/s for int8) per precision (None: unknown or not supported), the clock and
    cores behind it (None for a GPU), and how it was derived (``notes``)."""

    gflops: dict[str, float | None]
    clock_ghz: float | None
    cores: int | None
    notes: list[str] = field(default_factory=list)
    simd_gflops: dict[str, float | None] | None = None  # CPU vector units alone (no AMX)
    per_cycle: dict[str, float | None] = field(default_factory=dict)  # ops per core per cycle (CPU)
    device: str = ""

    @property
    def known(self) -> bool:
        return any(value for value in self.gflops.values())


@dataclass(frozen=True)
class CpuText:
    """What :func:`parse_cpuinfo` reads from /proc/cpuinfo."""

    model: str
    flags: frozenset[str]
    processors: tuple[int, ...]
    core_of: dict[int, tuple[str, str]]  # logical cpu -> (physical id, core id), where listed
    mhz: float | None


def parse_cpuinfo(text: str) -> CpuText:
    """Model name, flags (the first processor's), logical processors, their physical cores and the
    "cpu MHz" of /proc/cpuinfo text; tolerant of missing fields."""
    model, flags, processors, core_of, mhz = "", frozenset(), [], {}, None
    for block in re.split(r"\n\s*\n", text.strip()):
        fields = {}
        for line in block.splitlines():
            key, colon, value = line.partition(":")
            if colon:
                fields[key.strip().lower()] = value.strip()
        if not fields.get("processor", "").isdigit():
            continue
        cpu = int(fields["processor"])
        processors.append(cpu)
        model = model or fields.get("model name", "")
        flags = flags or frozenset(fields.get("flags", "").split())
        if "physical id" in fields and "core id" in fields:
            core_of[cpu] = (fields["physical id"], fields["core id"])
        if mhz is None:
            mhz = _positive(fields.get("cpu mhz"))
    return CpuText(model, flags, tuple(processors), core_of, mhz)


def _positive(text) -> float | None:
    try:
        value = float(str(text).strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def physical_cores(info: CpuText, allowed: set[int] | None = None) -> tuple[int | None, str]:
    """The physical cores among the logical processors ``allowed`` (all when None), and a note."""
    cpus = [cpu for cpu in info.processors if allowed is None or cpu in allowed]
    if not cpus and allowed:
        cpus = sorted(allowed)  # a /proc/cpuinfo that lists no processors
    if not cpus:
        return None, "no processors listed in /proc/cpuinfo"
    if all(cpu in info.core_of for cpu in cpus):
        cores = len({info.core_of[cpu] for cpu in cpus})
        return cores, f"{cores} physical cores available ({len(cpus)} logical processors)"
    return len(cpus), f"no core ids in /proc/cpuinfo: counted {len(cpus)} logical processors as cores"


def clock_ghz(
    max_freq_khz: str | None, lscpu: str | None, cpuinfo_mhz: float | None
) -> tuple[float | None, str]:
    """The clock in GHz and where it came from: sysfs ``cpuinfo_max_freq`` (kHz), else lscpu's
    "CPU max MHz", else /proc/cpuinfo's "cpu MHz"."""
    khz = _positive(max_freq_khz) if max_freq_khz is not None else None
    if khz:
        return khz / 1e6, f"clock {khz / 1e6:.2f} GHz: the maximum frequency from {MAX_FREQ}"
    match = re.search(r"^\s*CPU max MHz:\s*([0-9.]+)", lscpu or "", re.MULTILINE)
    mhz = _positive(match.group(1)) if match else None
    if mhz:
        return mhz / 1e3, f"clock {mhz / 1e3:.2f} GHz: lscpu's CPU max MHz (no cpufreq in sysfs)"
    if cpuinfo_mhz:
        return cpuinfo_mhz / 1e3, (
            f"clock {cpuinfo_mhz / 1e3:.2f} GHz: /proc/cpuinfo's cpu MHz (no maximum frequency in sysfs or "
            "lscpu; the current clock, often the nominal one in a VM)"
        )
    return None, "no clock found in sysfs, lscpu or /proc/cpuinfo"


# (flags, any of which gives the rate; ops per core per cycle; note), best first: see the module notes
FP32_RATES = (
    (
        ("avx512f",),
        16 * 2 * 2,
        "fp32: AVX-512, 16 lanes x 2 (FMA) x 2 units = 64 FLOP/cycle; " + FMA_NOTE.format(bits=512),
    ),
    (
        ("fma", "avx2"),
        8 * 2 * 2,
        "fp32: AVX2/FMA, 8 lanes x 2 (FMA) x 2 units = 32 FLOP/cycle; " + FMA_NOTE.format(bits=256),
    ),
    (("avx",), 8 * 2, "fp32: AVX without FMA, 8 lanes x (1 add + 1 multiply port) = 16 FLOP/cycle"),
    (("sse", "sse2"), 4 * 2, "fp32: SSE, 4 lanes x (1 add + 1 multiply port) = 8 FLOP/cycle"),
)
INT8_RATES = (
    (
        ("avx512_vnni",),
        16 * 4 * 2 * 2,
        "int8: AVX-512 VNNI (VPDPBUSD), 16 lanes x 4 MACs x 2 ops x 2 units = 256 ops/cycle",
    ),
    (
        ("avx_vnni",),
        8 * 4 * 2 * 2,
        "int8: AVX-VNNI (256-bit VPDPBUSD), 8 lanes x 4 MACs x 2 ops x 2 units = 128 ops/cycle",
    ),
    (
        ("avx512bw",),
        16 * 4 * 2 * 2 / 3,
        "int8: AVX-512BW without VNNI, 3 instructions per 64 MACs: 85.3 ops/cycle",
    ),
    (("avx2",), 8 * 4 * 2 * 2 / 3, "int8: AVX2 without VNNI, 3 instructions per 32 MACs: 42.7 ops/cycle"),
)
HALF_RATES = (  # (precision, flag for 2x fp32, instruction)
    ("bf16", "avx512_bf16", "VDPBF16PS"),
    ("fp16", "avx512_fp16", "VFMADDPH"),
)
AMX_RATES = (  # (precision, flag, ops per core per cycle)
    ("int8", "amx_int8", AMX_INT8_OPS),
    ("bf16", "amx_bf16", AMX_BF16_FLOPS),
    ("fp16", "amx_fp16", AMX_BF16_FLOPS),
)


def _first(flags: frozenset[str], rates: tuple) -> tuple[float | None, str | None]:
    return next(((rate, note) for names, rate, note in rates if flags & set(names)), (None, None))


def ops_per_cycle(flags) -> tuple[dict[str, float | None], dict[str, float | None], list[str]]:
    """Per core and cycle: the best rate per precision (AMX included), the vector units' rate, and
    notes; all None when no known SIMD flag is present. See the module notes for the derivation."""
    flags = frozenset(flags)
    simd: dict[str, float | None] = dict.fromkeys(PRECISIONS)
    fp32, note = _first(flags, FP32_RATES)
    if fp32 is None:
        return (
            dict(simd),
            simd,
            ["no SIMD flags this module knows (avx512f, avx2, fma, avx, sse) in /proc/cpuinfo: no CPU peak"],
        )
    simd["fp32"], notes = fp32, [note]
    for precision, flag, instruction in HALF_RATES:
        native = flag in flags
        simd[precision] = 2 * fp32 if native else fp32
        notes.append(
            f"{precision}: {flag} ({instruction}), 2x fp32"
            if native
            else f"{precision}: no {flag}, computed as fp32"
        )
    simd["int8"], note = _first(flags, INT8_RATES)
    notes.append(
        note or "int8: no int8 dot-product instructions known (avx512_vnni, avx_vnni, avx512bw, avx2)"
    )
    best = dict(simd)
    for precision, flag, rate in AMX_RATES:
        if flag in flags:
            best[precision] = rate
            notes.append(
                f"{precision}: AMX ({flag}) {rate:,.0f} ops/cycle, the best unit (simd_gflops: without AMX)"
            )
    return best, simd, notes


def peak_from(
    cpuinfo: str,
    *,
    threads: int,
    max_freq_khz: str | None = None,
    lscpu: str | None = None,
    allowed: set[int] | None = None,
) -> Peak:
    """The CPU peak from the text of /proc/cpuinfo (and sysfs ``cpuinfo_max_freq``, lscpu) for
    ``threads`` threads on the logical processors ``allowed``; gflops all None, with a note saying
    why, when the flags or the clock are unknown."""
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ConfigError(f"threads must be an integer >= 1, got {threads!r}")
    info = parse_cpuinfo(cpuinfo)
    best, simd, notes = ops_per_cycle(info.flags)
    ghz, clock_note = clock_ghz(max_freq_khz, lscpu, info.mhz)
    available, cores_note = physical_cores(info, allowed)
    cores = min(threads, available) if available else None
    notes += [clock_note, f"cores: min({threads} threads, {cores_note}) = {cores}"]
    scale = ghz * cores if ghz and cores else None

    def rates(per_cycle: dict) -> dict[str, float | None]:
        return {p: (v * scale if v and scale else None) for p, v in per_cycle.items()}

    if scale is None and best["fp32"] is not None:
        notes.append("no peak: the clock or the core count is unknown")
    return Peak(rates(best), ghz, cores, notes, rates(simd), best, info.model or "CPU")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _lscpu() -> str | None:
    try:
        done = subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=10, env={**os.environ, "LC_ALL": "C"}
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def cpu_peak(threads: int = 0) -> Peak:
    """This machine's CPU peak for ``threads`` torch threads (0: ``torch.get_num_threads()``); never
    raises for a machine it does not know (the peak is then None, with a note)."""
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
        raise ConfigError(f"threads must be an integer >= 0, got {threads!r}")
    if threads == 0:
        import torch

        threads = torch.get_num_threads()
    text = _read(CPUINFO)
    if text is None:
        return Peak(dict.fromkeys(PRECISIONS), None, None, [f"{CPUINFO} cannot be read: no CPU peak"])
    max_freq = _read(MAX_FREQ)
    lscpu = None if _positive(max_freq or "") else _lscpu()
    allowed = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return peak_from(text, threads=threads, max_freq_khz=max_freq, lscpu=lscpu, allowed=allowed)


# Dense TFLOPS (TOPS for int8) from NVIDIA's datasheets (nvidia.com/en-us/data-center/<gpu>/ "Specifications";
# H100/H200 datasheets, A100 datasheet, A10, L4 and T4 datasheets). The datasheets mark Tensor Core figures
# "with sparsity"; the dense figures below are half of those (the A100 and A10 sheets print both). fp32 is the
# CUDA cores' rate; tf32/bf16/fp16/int8 the Tensor Cores'. At boost clock; None: not supported.
GPU_TFLOPS: dict[str, dict[str, float | None]] = {
    "H200 NVL": dict(fp32=60, tf32=417.5, bf16=835.5, fp16=835.5, int8=1670.5),
    "H200": dict(fp32=67, tf32=494.5, bf16=989.5, fp16=989.5, int8=1979),
    "H100 NVL": dict(fp32=60, tf32=417.5, bf16=835.5, fp16=835.5, int8=1670.5),
    "H100 PCIe": dict(fp32=51, tf32=378, bf16=756.5, fp16=756.5, int8=1513),
    "H100 SXM": dict(fp32=67, tf32=494.5, bf16=989.5, fp16=989.5, int8=1979),
    "A100": dict(fp32=19.5, tf32=156, bf16=312, fp16=312, int8=624),
    "A10": dict(fp32=31.2, tf32=62.5, bf16=125, fp16=125, int8=250),
    "L4": dict(fp32=30.3, tf32=60, bf16=121, fp16=121, int8=242.5),
    "T4": dict(fp32=8.1, tf32=None, bf16=None, fp16=65, int8=130),
}
# torch.cuda.get_device_name() patterns, most specific first ("NVIDIA H100 80GB HBM3" is the SXM part)
GPU_NAMES = (
    (r"h200.*nvl", "H200 NVL"),
    (r"h200", "H200"),
    (r"h100.*nvl", "H100 NVL"),
    (r"h100.*pcie", "H100 PCIe"),
    (r"h100", "H100 SXM"),
    (r"a100", "A100"),
    (r"\ba10\b", "A10"),
    (r"\bl4\b", "L4"),
    (r"\bt4\b", "T4"),
)


def gpu_peak(name: str) -> Peak | None:
    """The published dense peak of a known datacenter GPU from its device name (as
    ``torch.cuda.get_device_name()`` gives it); None for a GPU not in :data:`GPU_TFLOPS`."""
    lowered = str(name).lower()
    model = next((model for pattern, model in GPU_NAMES if re.search(pattern, lowered)), None)
    if model is None:
        return None
    tflops = GPU_TFLOPS[model]
    gflops = {p: (float(tflops[p]) * 1000 if tflops.get(p) else None) for p in PRECISIONS}
    notes = [
        f"{name}: NVIDIA's datasheet figures for the {model}, dense (no sparsity), at boost clock",
        "torch fp32 convolutions run on TF32 Tensor Cores by default (torch.backends.cudnn.allow_tf32): "
        "compare them with the tf32 peak",
    ]
    if model == "H100 SXM" and "sxm" not in lowered and "hbm3" not in lowered:
        notes.append("assumed the SXM part (the name does not say PCIe or NVL)")
    return Peak(gflops, None, None, notes, simd_gflops=dict(gflops), device=model)


def achieved(macs: int | float, batch: int, p50_ms: float) -> float:
    """GFLOP/s (GOP/s for int8) of a model of ``macs`` multiply-accumulates per image run on ``batch``
    images in ``p50_ms``: 2 x MACs x batch / seconds / 1e9."""
    for label, value in (("macs", macs), ("batch", batch), ("p50_ms", p50_ms)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ConfigError(f"achieved() needs {label} > 0, got {value!r}")
    return 2 * macs * batch / (p50_ms / 1e3) / 1e9


def share(
    achieved_gflops: float | None, peak: Peak | None, precision: str, *, simd: bool = False
) -> float | None:
    """``achieved_gflops`` as a fraction of the peak for ``precision`` (the vector units' peak with
    ``simd``); None when either is unknown."""
    if peak is None or achieved_gflops is None or not math.isfinite(achieved_gflops):
        return None
    table = peak.simd_gflops if simd and peak.simd_gflops is not None else peak.gflops
    top = table.get(precision)
    return achieved_gflops / top if top else None


def shares(measurements: dict[str, dict], precisions: dict[str, str], peak: Peak | None, batch: int) -> dict:
    """Per variant with ``macs`` and a p50 at ``batch``: ``achieved_gflops``, the ``peak_gflops`` and
    ``share`` for its precision (``precisions``: name -> "fp32", "int8"...), and ``simd_share`` (the
    vector units' peak, e.g. VNNI for int8)."""
    out = {}
    for name, measurement in measurements.items():
        p50, macs, precision = (
            p50_at(measurement, batch),
            measurement.get("macs"),
            precisions.get(name, "fp32"),
        )
        if p50 is None or not isinstance(macs, (int, float)) or not math.isfinite(macs) or macs <= 0:
            continue
        rate = achieved(macs, batch, p50)
        out[name] = {
            "precision": precision,
            "achieved_gflops": rate,
            "peak_gflops": peak.gflops.get(precision) if peak else None,
            "share": share(rate, peak, precision),
            "simd_share": share(rate, peak, precision, simd=True),
        }
    return out
