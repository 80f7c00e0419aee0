"""The hand-off between active-learning runs and annotation queues: which preset fills which queue,
which jobs are filling one, which run filled it, and what a run records about the queue it filled."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from playground.active import report
from playground.active.escalation import AUTO, ESCALATE, OOD
from playground.active.experiment import Config
from playground.active.handoff import (
    describe_recipes,
    fill_command,
    filling_jobs,
    find_source_run,
    job_queue,
    queue_recipes,
    queue_sources,
    source_runs,
)
from playground.active.results import CURVES, QUEUE, QueueFill, read_queue_fill
from playground.core.runs import RunDir, read_result
from playground.store import Store
from tests.conftest import REPO
from tests.test_store import make_items

ACTIVE = str(REPO / "recipes" / "active_fashion.toml")
CLASSIFY = str(REPO / "recipes" / "classify_fashion.toml")


def test_the_shipped_recipe_says_which_preset_fills_which_queue():
    recipes = queue_recipes()
    assert [(r.preset, r.queue) for r in recipes] == [("quick", "fashion"), ("full", "fashion")]
    assert recipes[0].command == "playground run recipes/active_fashion.toml --preset quick"
    assert describe_recipes(recipes) == (
        "the **quick** and **full** presets of `recipes/active_fashion.toml` fill queue **fashion**"
    )
    assert fill_command("fashion", recipes) == recipes[0].command
    assert fill_command("my review", recipes) == f"{recipes[0].command} --set 'queue=my review'"
    assert fill_command("fashion", []) == "" and describe_recipes([]) == ""


def test_a_recipe_without_a_queue_fills_none(tmp_path):
    recipe = tmp_path / "active_plain.toml"
    recipe.write_text(
        'experiment = "active"\n[config]\nqueue = ""\n[presets.quick]\n[presets.named]\nqueue = "q"\n'
    )
    assert [(r.preset, r.queue) for r in queue_recipes([recipe, tmp_path / "missing.toml"])] == [
        ("named", "q")
    ]


def test_a_job_fills_its_presets_queue_or_the_one_it_sets():
    assert job_queue([ACTIVE, "--preset", "quick", "--seed", "3"]) == "fashion"
    assert (
        job_queue([ACTIVE, "--preset", "quick", "--set", "queue=review", "--set", "loop.budget=60"])
        == "review"
    )
    assert job_queue([ACTIVE, "--preset", "quick", "--set", 'queue=""']) == ""
    assert job_queue([CLASSIFY, "--preset", "quick"]) is None  # not an active-learning run
    assert job_queue([str(REPO / "recipes" / "missing.toml")]) is None and job_queue([]) is None


def test_only_queued_or_running_active_learning_jobs_fill_a_queue():
    def job(job_id, args, active=True):
        return SimpleNamespace(id=job_id, args=args, active=active)

    jobs = [
        job(4, [ACTIVE, "--preset", "quick", "--set", "queue=other"]),
        job(3, [ACTIVE, "--preset", "quick"]),
        job(2, [ACTIVE, "--preset", "quick"], active=False),  # finished
        job(1, [CLASSIFY, "--preset", "quick"]),
        job(5, [ACTIVE, "--preset", "quick", "--set", 'queue=""']),  # fills none
    ]
    assert [j.id for j in filling_jobs(jobs)] == [3, 4]
    assert [j.id for j in filling_jobs(jobs, "fashion")] == [3]
    assert filling_jobs(jobs, "nothing") == []


def active_run(root, name: str, seeds: tuple[str, ...] = ()) -> RunDir:
    run = RunDir.create(name, root)
    run.write_config(Config(), "active")
    for seed in seeds:
        (run.path / seed).mkdir()
        RunDir(run.path / seed).write_config(Config(), "active")
    return run


def test_the_runs_that_filled_a_queue_are_named_newest_first_and_found(tmp_path):
    single = active_run(tmp_path, "active")
    multi = active_run(tmp_path, "multi", ("seed0-20250101-000000", "seed1-20250101-000000"))
    with Store(f"sqlite:///{tmp_path / 'playground.db'}") as store:
        store.enqueue("fashion", make_items(3, prefix="a"), model=single.path.name, now=100.0)
        store.enqueue("fashion", make_items(2, prefix="b"), model="seed1-20250101-000000", now=200.0)
        store.enqueue("other", make_items(1, prefix="c"), now=300.0)
        sources = queue_sources(store, "fashion")
        assert [(s.model, s.items, s.last_added) for s in sources] == [
            ("seed1-20250101-000000", 2, 200.0),
            (single.path.name, 3, 100.0),
        ]
        assert [s.model for s in queue_sources(store, "other")] == [""]  # enqueued without a model name
        store.enqueue("fashion", make_items(4, prefix="d"), model="seed0-20250101-000000", now=150.0)
        store.enqueue("fashion", make_items(1, prefix="e"), model="gone-run", now=50.0)
        runs = [(r.name, r.path, r.items) for r in source_runs(store, "fashion", tmp_path)]
        assert runs == [
            (multi.path.name, multi.path, 6),
            (single.path.name, single.path, 3),
            ("gone-run", None, 1),
        ]
        assert source_runs(store, "other", tmp_path) == []
    assert find_source_run(tmp_path, single.path.name) == single.path
    assert find_source_run(tmp_path, "seed1-20250101-000000") == multi.path  # the seed's parent run
    assert find_source_run(tmp_path, "active-19990101-000000") is None and not find_source_run(tmp_path, "")
    other = RunDir.create("classify", tmp_path)  # a run of another experiment filled no queue
    (other.path / "config.toml").write_text('experiment = "classify"\n[config]\n')
    assert find_source_run(tmp_path, other.path.name) is None and find_source_run(tmp_path, "../x") is None


def escalation(routes: list[int]):
    """An escalation outcome with just the routes (what the hand-off counts before it enqueues)."""
    return SimpleNamespace(routes=torch.tensor(routes))


def test_a_run_that_escalated_nothing_records_why_and_creates_no_queue(tmp_path):
    run = RunDir.create("active", tmp_path)
    fill = report.hand_off(SimpleNamespace(queue="review"), escalation([AUTO, AUTO]), None, run)
    assert fill == QueueFill("review", 0, 0, added=0) and read_result(run.path, QUEUE)["queue"] == "review"
    assert "escalated nothing" in report.queue_summary(fill)
    with Store(f"sqlite:///{tmp_path / 'playground.db'}") as store:
        assert store.queues() == []


def test_a_run_without_a_queue_says_so_and_what_it_would_have_sent(tmp_path):
    run = RunDir.create("active", tmp_path)
    fill = report.hand_off(SimpleNamespace(queue=""), escalation([ESCALATE, OOD, OOD, AUTO]), None, run)
    assert (fill.queue, fill.uncertain, fill.ood, fill.sent) == ("", 1, 2, 0)
    summary = report.queue_summary(fill)
    assert 'escalation to annotators is off in its config (`queue = ""`)' in summary
    assert "It would have sent 1 uncertain, 2 likely OOD" in summary
    assert report.queue_section(fill) == ["## Annotation queue", summary, ""]  # no link to a queue it lacks


def test_a_run_made_before_the_queue_section_reads_its_queue_from_config_and_routes(tmp_path):
    run = RunDir.create("active", tmp_path)
    run.write_config(Config(queue="old-review"), "active")
    run.write_result(CURVES, {"escalation": {"routes": {"auto": 5, "escalate": 4, "ood": 2}}})
    fill = read_queue_fill(run.path)
    assert fill == QueueFill("old-review", 4, 2, added=None) and fill.sent == 6
    section = "\n".join(report.queue_section(fill))
    assert "Sent 6 stream samples (4 uncertain, 2 likely OOD) to annotation queue `old-review`." in section
    assert "http://localhost:8501/annotate?queue=old-review" in section
