"""The hardware's peak from fixed /proc/cpuinfo texts and the GPU table, and the share a variant reaches."""

from pathlib import Path

import pytest

from playground.core.timing import LatencyStats
from playground.errors import ConfigError
from playground.latency.peak import (
    Peak,
    achieved,
    clock_ghz,
    cpu_peak,
    gpu_peak,
    parse_cpuinfo,
    peak_from,
    physical_cores,
    share,
    shares,
)
from playground.latency.verdict import Verdict


def cpuinfo(flags: str, cores: list[int], mhz: float = 2000.0) -> str:
    """One block per logical processor; ``cores[i]`` is processor i's core id (SMT siblings repeat it)."""
    return "\n\n".join(
        f"processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU\ncpu MHz\t\t: {mhz:.3f}\n"
        f"physical id\t: 0\ncore id\t\t: {core}\ncpu cores\t: {len(set(cores))}\n"
        f"flags\t\t: fpu sse sse2 {flags}"
        for i, core in enumerate(cores)
    )


AVX512_VNNI = cpuinfo("avx avx2 fma avx512f avx512bw avx512_vnni", [0, 1, 0, 1])  # 2 cores, 2 threads each
AVX2 = cpuinfo("avx avx2 fma", [0, 1, 2, 3])
AMX = cpuinfo("avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16", [0, 1])
UNKNOWN = "processor\t: 0\nmodel name\t: Some RISC-V core\nisa\t\t: rv64imafdc\n"
LSCPU = "Architecture:            x86_64\nCPU(s):                  4\nCPU max MHz:             3000.0000\n"


def test_avx512_vnni_peak_equals_the_hand_computed_numbers():
    # 2 physical cores (8 threads asked, 4 logical CPUs), 3.5 GHz from sysfs (kHz)
    peak = peak_from(AVX512_VNNI, threads=8, max_freq_khz="3500000\n")
    assert peak.cores == 2 and peak.clock_ghz == 3.5
    assert peak.per_cycle["fp32"] == 64  # 16 lanes x 2 (FMA) x 2 units
    assert peak.gflops["fp32"] == pytest.approx(64 * 2 * 3.5)  # 448 GFLOP/s
    assert peak.gflops["int8"] == pytest.approx(256 * 2 * 3.5)  # VPDPBUSD: 16 x 4 MACs x 2 ops x 2 units
    assert peak.gflops["int8"] == 4 * peak.gflops["fp32"]
    assert peak.gflops["bf16"] == peak.gflops["fp32"]  # no avx512_bf16: computed as fp32
    assert peak.gflops["tf32"] is None
    assert peak.simd_gflops == peak.gflops  # no AMX
    assert any("two 512-bit FMA units" in note for note in peak.notes)
    assert any("cpuinfo_max_freq" in note for note in peak.notes)


def test_avx2_peak_with_lscpu_clock_and_one_thread():
    peak = peak_from(AVX2, threads=1, lscpu=LSCPU)
    assert peak.cores == 1 and peak.clock_ghz == 3.0
    assert peak.gflops["fp32"] == pytest.approx(32 * 3.0)  # 8 lanes x 2 x 2 units
    assert peak.gflops["int8"] == pytest.approx(8 * 4 * 2 * 2 / 3 * 3.0)  # 3 instructions per 32 MACs: 128
    assert any("lscpu" in note for note in peak.notes)


def test_amx_is_the_best_unit_and_simd_keeps_the_vnni_peak():
    peak = peak_from(AMX, threads=2)  # the clock from "cpu MHz": 2 GHz
    assert peak.clock_ghz == 2.0 and peak.cores == 2
    assert peak.gflops["int8"] == pytest.approx(2048 * 2 * 2.0)
    assert peak.simd_gflops["int8"] == pytest.approx(256 * 2 * 2.0)
    assert peak.gflops["bf16"] == pytest.approx(1024 * 2 * 2.0)
    assert peak.simd_gflops["bf16"] == pytest.approx(128 * 2 * 2.0)  # AVX512-BF16: 2x fp32
    assert any("cpu MHz" in note for note in peak.notes)


@pytest.mark.parametrize("text", [UNKNOWN, "", "garbage without colons"])
def test_an_unknown_cpu_has_no_peak_and_says_why(text):
    peak = peak_from(text, threads=2)
    assert not peak.known and all(value is None for value in peak.gflops.values())
    assert any("no SIMD flags" in note for note in peak.notes)
    assert share(100.0, peak, "fp32") is None


def test_an_unknown_clock_gives_no_peak():
    peak = peak_from(AVX2.replace("cpu MHz", "bogus"), threads=1)
    assert peak.clock_ghz is None and not peak.known
    assert any("no clock" in note for note in peak.notes)


def test_clock_sources_in_order():
    assert clock_ghz("2400000", LSCPU, 1000.0)[0] == 2.4
    assert clock_ghz(None, LSCPU, 1000.0)[0] == 3.0
    assert clock_ghz("", "no max here", 1000.0)[0] == 1.0
    assert clock_ghz(None, None, None) == (None, "no clock found in sysfs, lscpu or /proc/cpuinfo")


def test_physical_cores_count_smt_siblings_once_and_follow_the_affinity():
    info = parse_cpuinfo(AVX512_VNNI)
    assert info.processors == (0, 1, 2, 3) and "avx512_vnni" in info.flags and info.mhz == 2000.0
    assert physical_cores(info)[0] == 2
    assert physical_cores(info, {0, 2})[0] == 1  # siblings on core 0
    assert physical_cores(parse_cpuinfo(UNKNOWN))[0] == 1  # no core ids: logical processors


def test_threads_must_be_positive():
    with pytest.raises(ConfigError):
        peak_from(AVX2, threads=0)
    with pytest.raises(ConfigError):
        cpu_peak(-1)


@pytest.mark.parametrize(
    "name, model, fp16, int8",
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM", 989_500, 1_979_000),
        ("NVIDIA H100 PCIe", "H100 PCIe", 756_500, 1_513_000),
        ("NVIDIA H200", "H200", 989_500, 1_979_000),
        ("NVIDIA A100-SXM4-80GB", "A100", 312_000, 624_000),
        ("NVIDIA A10", "A10", 125_000, 250_000),
        ("NVIDIA L4", "L4", 121_000, 242_500),
        ("Tesla T4", "T4", 65_000, 130_000),
    ],
)
def test_known_gpus(name, model, fp16, int8):
    peak = gpu_peak(name)
    assert peak.device == model
    assert peak.gflops["fp16"] == fp16 and peak.gflops["int8"] == int8
    assert any("dense" in note for note in peak.notes)


@pytest.mark.parametrize("name", ["NVIDIA A10G", "NVIDIA L40S", "NVIDIA GeForce RTX 4090", ""])
def test_unknown_gpus_have_no_peak(name):
    assert gpu_peak(name) is None


def test_t4_has_no_bf16_or_tf32():
    peak = gpu_peak("Tesla T4")
    assert peak.gflops["bf16"] is None and peak.gflops["tf32"] is None
    assert share(1000.0, peak, "bf16") is None


def test_achieved_and_share():
    rate = achieved(1_800_000_000, 1, 10.0)  # ResNet-18's 1.8 GMACs in 10 ms
    assert rate == pytest.approx(360.0)
    assert achieved(1_000_000, 32, 2.0) == pytest.approx(2 * 1e6 * 32 / 0.002 / 1e9)
    peak = peak_from(AVX512_VNNI, threads=2, max_freq_khz="3500000")
    assert share(rate, peak, "fp32") == pytest.approx(360 / 448)
    assert share(rate, None, "fp32") is None
    for bad in ((0, 1, 1.0), (1, 0, 1.0), (1, 1, 0.0), (1, 1, float("nan"))):
        with pytest.raises(ConfigError):
            achieved(*bad)


def test_shares_per_variant():
    peak = peak_from(AMX, threads=2)
    results = {
        "torch_fp32": {"macs": 1_000_000_000, "latency": {1: LatencyStats(1, 50, 4.0, 4, 4, 4, 0, 250)}},
        "ort_int8_static": {"macs": 1_000_000_000, "latency": {1: LatencyStats(1, 50, 1.0, 1, 1, 1, 0, 1e3)}},
        "no_macs": {"latency": {1: LatencyStats(1, 50, 1.0, 1, 1, 1, 0, 1e3)}},
    }
    out = shares(results, {"torch_fp32": "fp32", "ort_int8_static": "int8"}, peak, 1)
    assert set(out) == {"torch_fp32", "ort_int8_static"}
    assert out["torch_fp32"]["achieved_gflops"] == pytest.approx(500.0)
    assert out["torch_fp32"]["share"] == pytest.approx(500 / 256)  # fp32 peak: 64 x 2 cores x 2 GHz
    assert out["ort_int8_static"]["share"] == pytest.approx(2000 / 8192)  # AMX int8
    assert out["ort_int8_static"]["simd_share"] == pytest.approx(2000 / 1024)  # VNNI


def test_this_machine():
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if not {"avx512f", "avx512_vnni"} <= parse_cpuinfo(text).flags:
        pytest.skip("this CPU has no AVX-512 VNNI")
    peak = cpu_peak(0)
    assert peak.known and peak.gflops["fp32"] > 0 and peak.cores >= 1
    assert peak.gflops["int8"] > peak.gflops["fp32"]
    assert peak.simd_gflops["int8"] == pytest.approx(4 * peak.simd_gflops["fp32"])


def test_shares_above_the_peak_are_called_out_as_an_understated_peak():
    peak = Peak({"fp32": 100.0, "int8": 200.0}, 2.45, 2, ["clock 2.45 GHz: /proc/cpuinfo's cpu MHz"])
    rows = {
        "ort_fp32": {"precision": "fp32", "achieved_gflops": 80.0, "peak_gflops": 100.0, "share": 0.8},
        "ort_int8_static": {
            "precision": "int8",
            "achieved_gflops": 300.0,
            "peak_gflops": 200.0,
            "share": 1.5,
        },
    }
    (section,) = Verdict(1, "torch_fp32", None, peak, rows).sections()
    assert "| ort_int8_static | int8 | 300.0 | 200 | 150.0% |" in section
    assert "**ort_int8_static above 100% of the peak**: the peak is understated" in section
    rows["ort_int8_static"]["share"] = 0.9
    assert "understated" not in Verdict(1, "torch_fp32", None, peak, rows).sections()[0]
