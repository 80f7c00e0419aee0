"""Does "uncertain frames first" send annotators the frames that need the most work?

For a pointcloud run with a learned detector, this remakes the run's frames on both sensors, scores each
frame's uncertainty U as the page does (:func:`playground.pointcloud.prelabels.frame_uncertainty`: the
detector's confidences and its disagreement with the geometric proposals) and counts the edits its
pre-labels need to reach the ground truth (:func:`playground.pointcloud.evaluation.annotator_edits`).
It prints Spearman's rank correlation between the two, and the share of all edits that the most
uncertain half of the frames holds (0.5 is what a random order gives)::

    python scripts/uncertainty_vs_edits.py runs/pointcloud_detector-<time>
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from playground.core.runner import config_from_recipe
from playground.pointcloud.detector import load_detector
from playground.pointcloud.evaluation import EDIT_KINDS, annotator_edits
from playground.pointcloud.learned import detect
from playground.pointcloud.prelabels import frame_uncertainty
from playground.pointcloud.proposals import propose
from playground.pointcloud.scenes import make_scene

LABELS = ("car", "pedestrian")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a pointcloud run folder holding detector.safetensors")
    args = parser.parse_args(argv)
    folder = Path(args.run)
    _, config = config_from_recipe(folder / "config.toml", None)  # the run's own config, as it ran
    model = load_detector(folder / "detector.safetensors")
    detector = config.detector
    out = {}
    for sensor, spec in (("run", config.scene), ("other_sensor", detector.other_sensor.spec(config.scene))):
        uncertainty, edits = [], []
        for index in range(config.scenes):
            scene = make_scene(dataclasses.replace(spec, seed=config.seed + index))
            learned = detect(model, scene, detector.min_score)
            shown = [b for b in learned if b.score >= detector.prelabel_score]
            found = frame_uncertainty(
                learned, propose(scene.points), [], detector.min_score, detector.prelabel_score
            )
            counts = annotator_edits(scene.ground_truth(LABELS), shown, LABELS, config.min_gt_points)
            uncertainty.append(found.score)
            edits.append(sum(counts[k] for k in EDIT_KINDS[1:]))
        order = np.argsort(-np.asarray(uncertainty), kind="stable")
        top = order[: len(order) // 2]
        out[sensor] = dict(
            spearman=float(spearmanr(uncertainty, edits).statistic),
            share_of_edits_in_most_uncertain_half=float(np.sum(np.asarray(edits)[top]) / max(1, sum(edits))),
            frames=len(edits),
            mean_edits=float(np.mean(edits)),
        )
        print(sensor, json.dumps(out[sensor]))
    return out


if __name__ == "__main__":
    main()
