"""The shipped reference runs: complete, small, readable by their pages, and quoted by the README as
they are."""

from __future__ import annotations

import re
import shutil
import sys

import pytest

from playground.core.reference import reference_runs, reference_table
from playground.core.registry import TECHNIQUES, headline_names
from playground.core.runs import RESULTS, format_number, read_json, read_result
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import make_reference  # noqa: E402


@pytest.fixture
def shipped(monkeypatch):
    monkeypatch.delenv("PLAYGROUND_REFERENCE")  # the checkout's reference/ folder
    return reference_runs()


def test_every_technique_ships_a_complete_reference_run(shipped):
    assert {info.experiment for info in shipped} == {t.key for t in TECHNIQUES}
    for info in shipped:
        status = info.status
        assert status.state == "complete" and status.seconds > 0, info.name
        assert (info.path / "PRESET").read_text().strip() in ("quick", "full")
        assert info.metrics and (info.path / "report.md").is_file()


def test_reference_runs_keep_their_reports_plots_and_results(shipped):
    for info in shipped:
        linked = re.findall(r"\]\(([^)\s]+\.png)\)", info.report)
        assert all((info.path / name).is_file() for name in linked), info.name
        if (info.path / RESULTS).is_file():
            sections = read_json(info.path / RESULTS)["sections"]
            assert all(read_result(info.path, name) == value for name, value in sections.items())


def test_reference_runs_fit_the_budget_and_keep_only_the_models_pages_load(shipped):
    files = [p for p in (REPO / "reference").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) / 2**20 <= make_reference.BUDGET_MB
    for path in files:
        if path.suffix == ".safetensors":
            run = next(info for info in shipped if path.is_relative_to(info.path))
            assert any(path.match(pattern) for pattern in make_reference.KEEP.get(run.experiment, ())), path


def test_the_readme_quotes_the_reference_runs_as_they_are(shipped):
    assert make_reference.readme(check=True) == 0
    table = reference_table()
    for info in shipped:
        row = next(line for line in table.splitlines() if info.name in line)
        names = headline_names(info.experiment, info.metrics)
        assert names, info.name  # every reference run quotes some figure
        for name in names[:3]:
            assert f"{name} {format_number(info.metrics[name])}" in row


def test_a_reference_run_from_an_older_layout_still_opens_or_says_why(tmp_path, monkeypatch, shipped):
    """No status.json (made before it existed): complete when it has a report, else interrupted."""
    from playground.core.status import read_status

    classify = next(info for info in shipped if info.experiment == "classify")
    old = shutil.copytree(classify.path, tmp_path / classify.name)
    (old / "status.json").unlink()
    assert read_status(old).state == "complete"
    (old / "report.md").unlink()
    assert read_status(old).state == "interrupted" and "before writing" in read_status(old).error


def test_the_readmes_result_rows_for_a_shipped_preset_quote_its_reference_run(shipped):
    """A row ``| recipe | preset | **figure** |`` in the README quotes the headline of that reference run."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\w+) \| (quick|full) \| \*\*([0-9.]+)\*\* \|", readme, flags=re.M)
    assert rows  # the classifier's table at least
    by_recipe = {
        (info.name.rsplit("-", 2)[0], (info.path / "PRESET").read_text().strip()): info for info in shipped
    }
    for recipe, preset, figure in rows:
        info = by_recipe[(recipe, preset)]
        headline = headline_names(info.experiment, info.metrics)[0]
        assert figure == format_number(info.metrics[headline]), (recipe, preset)
