"""A stand-in trial that spawned workers can import: it marks that it started, then sleeps a second."""

import time
from pathlib import Path


def sleepy_trial(job) -> dict:
    (Path(job.out) / f"started-{job.key}").touch()
    time.sleep(1.0)
    return {"status": "done", "run_dir": job.out, "metrics": {}}
