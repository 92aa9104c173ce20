"""A smoke run of the paper path: the one command, `python -m asclib reproduce --profile paper`,
on a real-layout folder built from the 13 real clips, with the paper's feature sizes and models
and every training shortened (docs/running.md, "Profiles"). It keeps the real-data path from rotting
while the full development set is not at hand."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from asclib.config import PROJECT_ROOT
from asclib.report import notebooks
from conftest import write_layout

# The smoke run's reductions: 2 epochs (the first cosine cycle) of one step of 2 mixed clips for
# every training, and only the first training seed (5 model runs and 6 ablation runs instead of
# 5 and 18): the seeds run the same code, so one checks the path. The whole command took 5 min
# on a 2-core AMD EPYC with AVX-512 and over 25 min on one without it with all seeds.
SMOKE = ("--epochs", "2", "--steps-per-epoch", "1", "--batch-size", "2", "--seeds", "1")
# Evaluation segments and the devices that record them: every device once (device A twice, for
# notebook 10's two figures), one segment per coarse class, none used in training. Every trained
# model predicts every evaluation clip, so their number sets much of the run's time.
EVALUATE = {
    "airport-milan-1061-42604": ("a", "b", "c"),
    "street_traffic-vienna-177-5477": ("a", "s1", "s2", "s3"),
    "tram-stockholm-284-8588": ("s4", "s5", "s6"),
}
# Training segments that also get a parallel recording by a minor device (spectrum correction
# needs device-A clips paired with b, c, s1, s2 or s3).
PARALLEL = {
    "airport-helsinki-3-115": "b",
    "bus-lyon-1124-42726": "c",
    "park-london-96-2684": "s1",
    "shopping_mall-paris-132-3965": "s2",
    "street_pedestrian-barcelona-145-4370": "s3",
}
# What the quick profile writes that the real data cannot give: these need the event list of the
# synthetic corpus (events.tsv), which the real development set does not have.
NEEDS_EVENTS = {
    "figures/01_event_vocabulary.png", "figures/01_scenes_with_events.png",
    "figures/10_event_attention.png", "figures/10_event_attention_by_scene.png",
    *(f"tables/{name}.{ext}" for name in ("10_event_attention", "10_event_attention_by_group",
                                          "10_event_attention_by_scene", "10_statements") for ext in ("csv", "md")),
}


def smoke_layout(root: Path, real_clips: list[Path]) -> Path:
    """A DCASE-layout folder of 25 clips (15 training, 10 evaluation), all byte copies of the 13
    real ones (12 device-A training clips and one s4 evaluation clip), renamed to other devices:
    a copy is not a recording by that device, so the folder serves the pipeline's mechanics
    (parallel recordings for spectrum correction, every device evaluated), never its numbers.
    The split is this test's own; scenes stay as recorded: 7 of the 10 occur."""
    clips, train = {}, set()
    for clip in real_clips:
        stem = clip.stem.rsplit("-", 1)[0]
        if stem in EVALUATE:
            clips.update({f"{stem}-{device}.wav": clip for device in EVALUATE[stem]})
        else:
            names = [f"{stem}-a.wav"] + ([f"{stem}-{PARALLEL[stem]}.wav"] if stem in PARALLEL else [])
            clips.update(dict.fromkeys(names, clip))
            train.update(names)
    return write_layout(root, clips, train, copy=True)


def quick_outputs() -> set[str]:
    """The tables and figures of the committed quick results, as "tables/NAME.csv" and so on."""
    results = PROJECT_ROOT / "results" / "quick"
    return {str(path.relative_to(results)) for folder in ("tables", "figures")
            for path in (results / folder).iterdir()}


def test_the_paper_path_runs_end_to_end_on_real_clips(real_clips, released_dir, tmp_path):
    """Skipped without the real clips or the released scores (notebook 11 reads them through the
    ASC_RELEASED_DIR that conftest sets, as make does, instead of downloading them)."""
    layout = smoke_layout(tmp_path / "tau", real_clips)
    folders = {variable: tmp_path / name for variable, name in (
        ("ASC_CACHE_DIR", "cache"), ("ASC_RUNS_DIR", "runs"), ("ASC_RESULTS_DIR", "results"),
        ("ASC_AUGMENTED_DIR", "data"))}
    environment = {**os.environ, "ASC_DATA_DIR": str(layout), **{k: str(v) for k, v in folders.items()}}
    for variable in ("ASC_TRAINING_OVERRIDES", "ASC_EXCLUDED_FILES"):  # the command sets them itself
        environment.pop(variable, None)
    runs = folders["ASC_RUNS_DIR"]
    try:
        done = subprocess.run([sys.executable, "-m", "asclib", "reproduce", "--profile", "paper",
                               "--data-dir", str(layout), *SMOKE], cwd=PROJECT_ROOT, env=environment,
                              capture_output=True, text=True, timeout=2400)  # a hang, not a slow CPU
        run_folders = sorted(path.name for path in runs.iterdir()) if runs.is_dir() else []
    finally:  # 11 paper-width checkpoints, about 1 GB; pytest keeps three sessions' temporary folders
        shutil.rmtree(runs, ignore_errors=True)
    assert done.returncode == 0, f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-6000:]}"

    results = folders["ASC_RESULTS_DIR"] / "paper-smoke"
    written = {str(path.relative_to(results)) for folder in ("tables", "figures")
               for path in (results / folder).iterdir()}
    assert quick_outputs() - NEEDS_EVENTS - written == set()
    assert not written & NEEDS_EVENTS  # skipped, not faked
    assert {path.name for path in (results / "notebooks").iterdir()} == {path.name for path in notebooks()}
    manifest = json.loads((results / "manifest.json").read_text())
    assert manifest["training_overrides"] == {"batch_size": 2, "epochs": 2, "seeds": 1, "steps_per_epoch": 1}
    assert written <= set(manifest["files"])
    # nothing where the recipe's runs and results live
    assert run_folders == ["paper-smoke"]
    assert [path.name for path in folders["ASC_RESULTS_DIR"].iterdir()] == ["paper-smoke"]
