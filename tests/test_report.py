"""Results files: Markdown rendering, README blocks filled from results/, notebook parameters."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import papermill
import pytest

from asclib import kernels, report, result_files
from asclib.config import PROJECT_ROOT, TRAINING_OVERRIDES_VARIABLE, reduce_training
from asclib.data import EXCLUDED_FILES_VARIABLE, BadFilesWarning, load_index
from conftest import PAPER, write_layout


def test_markdown_table_shows_missing_values_as_a_dash_and_keeps_three_decimals():
    table = pd.DataFrame({"overall": [74.56, float("nan")], "log loss": [0.6034, 1.0]}, index=["ours", "paper"])
    lines = result_files.markdown_table(table).splitlines()
    assert lines[0] == "|  | overall | log loss |"
    assert lines[2] == "| ours | 74.56 | 0.603 |" and lines[3] == "| paper | – | 1 |"


def test_update_readme_fills_blocks_from_results_and_refuses_a_missing_table(tmp_path, monkeypatch):
    monkeypatch.setenv("ASC_RESULTS_DIR", str(tmp_path / "results"))
    tables = tmp_path / "results" / "quick" / "tables"
    tables.mkdir(parents=True)
    pd.DataFrame({"overall": [61.5]}, index=["resnet"]).to_csv(tables / "04_a_training.csv")
    pd.DataFrame({"overall": [70.25]}, index=["fcnn"]).to_csv(tables / "05_b_training.csv")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results: tables/*_training.csv -->\nstale 1.0\n<!-- /results -->\nend\n")
    assert report.update_readme("quick", readme) == ["tables/*_training.csv"]
    text = readme.read_text()
    assert "stale" not in text and ("| resnet | 61.5 |\n| fcnn | 70.25 |\n\n*From `results/quick/tables/*_training.csv`, "
                                    "made by `notebooks/04_resnet.ipynb` and `notebooks/05_fcnn.ipynb`.*\n"
                                    "<!-- /results -->\nend\n") in text
    assert text.startswith("intro\n<!-- results: tables/*_training.csv -->\n|  | overall |")
    readme.write_text("<!-- results: tables/table9.csv -->\nold\n<!-- /results -->\n")
    with pytest.raises(FileNotFoundError, match="table9.csv"):
        report.update_readme("quick", readme)
    pd.DataFrame({"overall": [1.0]}, index=["x"]).to_csv(tables / "table9.csv")  # no notebook's number
    with pytest.raises(ValueError, match=r"table9.csv: a result file's name starts with its notebook's number"):
        report.update_readme("quick", readme)
    assert "old" in readme.read_text()


def test_registry_blocks_are_filled_from_the_registries_and_follow_a_new_entry(tmp_path, monkeypatch):
    """The registries' tables (docs/library.md, "The registries") need no results, and an entry
    registered later shows in them without a sentence to change."""
    from asclib import ablation, architectures, augment, data

    monkeypatch.setenv("ASC_RESULTS_DIR", str(tmp_path / "results"))  # no results at all
    document = tmp_path / "doc.md"
    document.write_text("intro\n<!-- registry: augmentations -->\nstale\n<!-- /registry -->\n"
                        "<!-- registry: table-3-rows -->\n<!-- /registry -->\nend\n")
    assert report.update_registries([document]) == [document] and report.update_registries([document]) == []
    text = document.read_text()
    assert "stale" not in text and text.endswith("by `report.registry_table(\"table-3-rows\")`.*\n<!-- /registry -->\nend\n")
    assert all(f"\n| {name} | {method.kind} |" in text for name, method in augment.METHODS.items())
    assert report.update_readme("quick", document) == ["augmentations", "table-3-rows"]  # no results block to fill

    monkeypatch.setitem(augment.METHODS, "made_up", augment.Method("made_up", "online", 99, "a made-up method"))
    monkeypatch.setattr(ablation, "BEYOND_PAPER", {**ablation.BEYOND_PAPER, "+made_up": (*ablation.PAPER_RECIPE, "made_up")})
    assert report.update_registries([document]) == [document]
    text = document.read_text()
    assert "| made_up | online | after the paper | batches | – | +made_up | a made-up method |" in text
    assert f"| +made_up | beyond the paper | {ablation.PAPER_ROW} | +made_up |" in text
    assert list(report.registry_table("networks").index) == list(architectures.REGISTRY)
    assert list(report.registry_table("devices").index) == list(data.DEVICES)
    document.write_text("<!-- registry: scenes -->\n<!-- /registry -->\n")
    with pytest.raises(ValueError, match="unknown registry block 'scenes'"):
        report.update_registries([document])


def test_declared_parameters_are_read_from_the_tagged_cell():
    notebook = result_files.NOTEBOOK_DIR / "11_fusion_audit.ipynb"
    assert {"profile", "data_dir", "seed", "released_dir"} <= report.declared_parameters(notebook)


def test_manifest_records_the_cpu_its_kernels_and_every_package(tmp_path, monkeypatch):
    monkeypatch.setenv("ASC_RESULTS_DIR", str(tmp_path))
    path = report.write_manifest("quick", {"seed": 0}, {"01_data.ipynb": 1.0}, "abc")
    manifest = json.loads(path.read_text())
    assert manifest["torch_cpu_capability"] and "cpu" in manifest
    assert manifest["cpu_kernel_caps"] == kernels.settings()
    assert manifest["packages"]["torch"].startswith("2.13.0") and "numpy" in manifest["packages"]


def test_reproduce_checks_the_dataset_first_and_can_leave_bad_clips_out(tmp_path, monkeypatch):
    names = [f"park-espoo-{k}-{k}-a.wav" for k in range(3)]
    root = write_layout(tmp_path / "tau", {name: np.zeros(441_000, np.float32) for name in names},
                        train=set(names[:2]), rate=44_100, subtype="PCM_24")
    (root / "audio" / names[0]).unlink()
    monkeypatch.setenv("ASC_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv(EXCLUDED_FILES_VARIABLE, "")  # restored after the test
    ran = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda source, target, **kwargs: (
        ran.append(source), shutil.copy(source, target)))
    with pytest.raises(ValueError, match=r"missing: 1 file\(s\)"):
        report.reproduce("paper", str(root), only=["01"])
    assert not ran
    with pytest.warns(BadFilesWarning):
        report.reproduce("paper", str(root), only=["01"], skip_bad=True)
    listing = tmp_path / "results" / "paper" / "excluded_files.csv"
    assert ran and pd.read_csv(listing)["filename"].tolist() == [f"audio/{names[0]}"]
    assert list(load_index(root, PAPER)["filename"]) == [f"audio/{name}" for name in names[1:]]


def test_a_smoke_run_writes_apart_and_records_its_reductions(tmp_path, monkeypatch):
    names = [f"park-espoo-{k}-{k}-a.wav" for k in range(2)]
    root = write_layout(tmp_path / "corpus", {name: np.zeros(64_000, np.float32) for name in names},
                        train={names[0]})
    monkeypatch.setenv("ASC_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv(EXCLUDED_FILES_VARIABLE, "")
    monkeypatch.setenv(TRAINING_OVERRIDES_VARIABLE, "")  # restored after the test
    reduce_training(epochs=2, steps_per_epoch=1)
    targets = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda source, target, **kwargs: (
        targets.append(target), shutil.copy(source, target)))
    monkeypatch.setattr(report, "update_readme", lambda *args: pytest.fail("a smoke run rewrote the README"))
    manifest = report.reproduce("quick", str(root), only=["01"])
    assert manifest == tmp_path / "results" / "quick-smoke" / "manifest.json"
    assert json.loads(manifest.read_text())["training_overrides"] == {"epochs": 2, "steps_per_epoch": 1}
    assert (manifest.parent / "notebooks" / "01_data.ipynb").is_file()  # not the committed notebook
    assert all(Path(target).is_relative_to(tmp_path) for target in targets)


def test_committed_notebooks_carry_no_injected_parameters_cell():
    """Papermill's added cell would set a reader's edited parameters back on every run."""
    import nbformat

    for path in report.notebooks():
        tags = [tag for cell in nbformat.read(path, as_version=4).cells for tag in cell.metadata.get("tags", [])]
        assert "injected-parameters" not in tags, path.name
        assert tags.count("parameters") == 1, path.name


def test_fold_parameters_writes_the_values_that_ran_into_the_parameters_cell():
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell('profile = "quick"   # which profile\nshape = {\n    "a": 1}\nseed = 0',
                                  metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('# Parameters\nprofile = "paper"\nseed = 0\nextra = [1, 2]\n',
                                  metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("print(profile)")]
    report.fold_parameters(notebook)
    assert [cell.source for cell in notebook.cells] == [
        'profile = "paper"   # which profile\nshape = {\n    "a": 1}\nseed = 0\nextra = [1, 2]', "print(profile)"]


def test_editing_the_parameters_cell_of_an_executed_notebook_changes_what_it_runs(tmp_path):
    """Executed as `reproduce` does, then edited by a reader and run again top to bottom."""
    import nbformat
    from nbclient import NotebookClient

    source = tmp_path / "probe.ipynb"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell('word = "default"  # what to print', metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell("print(word)")]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, source)
    executed = tmp_path / "executed.ipynb"
    report.execute(source, executed, {"word": "injected"})
    ran = nbformat.read(executed, as_version=4)
    assert ran.cells[-1].outputs[0]["text"] == "injected\n"

    ran.cells[0].source = ran.cells[0].source.replace('"injected"', '"edited"')
    NotebookClient(ran, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert ran.cells[-1].outputs[0]["text"] == "edited\n"


def test_every_committed_result_file_starts_with_its_notebooks_number():
    results = PROJECT_ROOT / "results" / "quick"
    files = [file for folder in ("tables", "figures", "predictions") for file in sorted((results / folder).iterdir())]
    assert len(files) > 100
    for file in files:
        result_files.notebook_of(file)  # raises for a file of no notebook
