"""The benchmark's verdict: which variant to ship within the budget asked (:mod:`playground.latency.pick`)
and how much of the hardware each variant uses (:mod:`playground.latency.peak`), as metrics and report
sections."""

from __future__ import annotations

from dataclasses import dataclass, field

from playground.core.runs import Metrics, markdown_table
from playground.latency.peak import Peak, cpu_peak, gpu_peak, shares
from playground.latency.pick import Pick, pick_table, pick_variant


@dataclass
class Verdict:
    """The pick (None when no budget was asked), the hardware peak and each variant's share at ``batch``."""

    batch: int
    reference: str
    pick: Pick | None
    peak: Peak | None
    shares: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def of(cls, config, variants: dict, results: dict, skipped: dict, info: dict) -> Verdict:
        batch = config.pick_batch or min(config.batch_sizes)
        reference = next(iter(variants))  # the benchmark builds the reference first
        max_drop, min_agreement = config.budget()
        pick = None
        if max_drop is not None or min_agreement is not None:
            sized = {n: {**r, "size_mb": variants[n].size_mb} for n, r in results.items()}
            pick = pick_variant(
                sized,
                batch=batch,
                reference=reference,
                max_drop=max_drop,
                min_agreement=min_agreement,
                skipped=skipped,
            )
        peak = gpu_peak(info["gpu"]) if info.get("gpu") else cpu_peak(config.threads)
        precisions = {n: v.precision for n, v in variants.items()}
        return cls(batch, reference, pick, peak, shares(results, precisions, peak, batch))

    def add_metrics(self, metrics: Metrics) -> None:
        """``bench/<variant>/b<batch>/gflops`` and ``.../peak_share``; ``pick/speedup`` (tagged with the
        picked variant)."""
        for name, row in self.shares.items():
            at = dict(variant=name, batch_size=self.batch)
            key = f"bench/{name}/b{self.batch}"
            metrics.add(f"{key}/gflops", row["achieved_gflops"], "GFLOP/s", **at, measure="gflops")
            if row.get("share") is not None:
                metrics.add(f"{key}/peak_share", row["share"], "fraction", **at, measure="peak_share")
        if self.pick is not None:
            metrics.add("pick/speedup", self.pick.speedup, "x", variant=self.pick.name, batch_size=self.batch)

    def sections(self) -> list[str]:
        """The report's "Pick" and "Against the machine" sections."""
        out = []
        if self.pick is not None:
            out.append(f"## Pick\n\n{self.pick.why}\n\n{pick_table(self.pick)}")
        out.append(self._machine())
        return out

    def _machine(self) -> str:
        if not self.shares:
            return "## Against the machine\n\nNo MAC count for this model (an ONNX file), so no GFLOP/s."
        body = [
            [
                name,
                row["precision"],
                f"{row['achieved_gflops']:.1f}",
                _number(row.get("peak_gflops"), ".0f"),
                _percent(row.get("share")),
                _percent(row.get("simd_share")),
            ]
            for name, row in self.shares.items()
        ]
        headers = ["variant", "precision", "achieved GFLOP/s", "peak", "share of peak", "share of SIMD peak"]
        notes = "\n".join(f"- {note}" for note in (self.peak.notes if self.peak else []))
        over = [name for name, row in self.shares.items() if (row.get("share") or 0) > 1]
        if over:
            notes += (
                f"\n\n**{', '.join(over)} above 100% of the peak**: the peak is understated here, so read "
                "the shares as ratios between variants. Usually the clock: without a maximum frequency "
                "in sysfs or lscpu (a VM), the nominal clock is read, and the core boosts above it."
            )
        return (
            f"## Against the machine (batch {self.batch})\n\nAchieved = 2 × MACs × batch / p50 (GOP/s for "
            f"int8); the peak is the hardware's for the variant's precision.\n\n"
            f"{markdown_table(headers, body)}\n\n{notes}"
        )


def _number(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
