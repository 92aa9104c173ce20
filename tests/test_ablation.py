"""The augmentation ablation (Table 3): rows, seeds, the statistics of the steps."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from asclib import ablation, store
from asclib.config import AblationConfig


CLIPS = 100  # per device, on devices a and s4


def _runs(gains: dict[str, list[int]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(results, correct) of runs whose accuracy on each device is 50 plus the row's gain of that
    seed (points): the first 50 + gain clips of each device are right."""
    devices = np.repeat(["a", "s4"], CLIPS)
    filenames = pd.Index([f"clip{k:03d}-{d}.wav" for k, d in enumerate(devices)], name="filename")
    correct, rows = {}, []
    for label, values in gains.items():
        for seed, value in enumerate(values):
            right = np.tile(np.arange(CLIPS) < 50 + value, 2)
            correct[label, seed] = pd.Series(right, index=filenames)
            rows.append({"row": label, "seed": seed, **{c: 50.0 + value for c in ablation.COLUMNS
                                                         if c in ("A", "s4-s6", "overall")}})
    table = pd.DataFrame(correct)
    table.insert(0, "device", devices)
    return pd.DataFrame(rows), table


def test_table_and_steps_by_hand():
    labels = list(ablation.ROWS)
    results, correct = _runs({labels[0]: [0, 0, 0], labels[1]: [1, 2, 3], labels[2]: [3, 4, 5]})
    summary = ablation.table(results)
    assert list(summary.index) == labels[:3]
    assert summary.loc[labels[1], "overall"] == 52.0 and summary.loc[labels[1], "overall std"] == 1.0
    assert list(summary.columns[:2]) == ["A", "A std"]
    steps = ablation.steps(results, correct, columns=("A", "s4-s6", "overall"))
    first = steps.loc[(labels[1], labels[0], "overall")]
    assert (first["mean gain"], first["seed std"], first["seeds"]) == (2.0, 1.0, 3)
    # seeds 1 point apart, and a gain of 1-3 clips in 100 per device: the interval holds zero
    assert first["low"] < 0 < first["high"] and not first["beyond noise"]
    assert first["half width"] > 1.96 * np.sqrt(1.0 ** 2 / 3 + second_clip_std(correct, labels[1], labels[0]) ** 2)
    second = steps.loc[(labels[2], labels[1], "overall")]  # differences 2, 2, 2: no seed spread
    assert second["mean gain"] == 2.0 and second["seed std"] == 0.0
    assert second["half width"] == pytest.approx(1.96 * second_clip_std(correct, labels[2], labels[1]), rel=0.02)
    sentences = ablation.describe(steps)
    assert len(sentences) == 2 and "not distinguishable" in sentences[0] and "over 3 seeds and the clips" in sentences[0]
    one_seed = ablation.describe(steps.assign(seeds=1))
    assert "over the clips of one seed" in one_seed[0] and "seeds and the clips" not in one_seed[0]
    # real data has no s7-s11: the default columns skip a group without clips, and say nothing of it
    every = ablation.steps(results, correct)
    assert "s7-s11" not in every.index.get_level_values("group") and ablation.describe(every, "s7-s11") == []


def second_clip_std(correct: pd.DataFrame, after: str, before: str) -> float:
    """The standard deviation of the seed-mean gain (points) that resampling the clips within
    each device gives, by formula: each device's mean of a 0/1 difference."""
    difference = np.mean([correct[after, s].to_numpy(float) - correct[before, s].to_numpy(float) for s in range(3)],
                         axis=0)
    per_device = [difference[correct["device"] == d] for d in ("a", "s4")]
    return 100 * np.sqrt(sum(x.var() / len(x) for x in per_device)) / 2


def test_steps_pair_by_seed_and_compare_notebook_04s_recipe():
    labels = list(ablation.ROWS)
    gains = {label: [0, 10, 20] for label in labels}  # a seed effect, the same in every row
    gains[ablation.NOTEBOOK_04_ROW[0]] = [-5, 5, 15]
    results, correct = _runs(gains)
    steps = ablation.steps(results, correct, columns=("A", "s4-s6", "overall"))
    assert (steps["seed std"] == 0).all()  # seed effects cancel in the paired differences
    last = steps.loc[(labels[-1], ablation.NOTEBOOK_04_ROW[0], "overall")]
    assert last["mean gain"] == 5.0 and last["beyond noise"]


def test_seeds_needed_for_a_narrower_interval():
    gain = pd.Series({"seeds": 3, "seed std": 2.0, "clip std": 0.3})
    needed = ablation.seeds_needed(gain, goal=1.5)
    from asclib import metrics
    assert metrics.half_width(2.0, 0.3, needed) <= 1.5 < metrics.half_width(2.0, 0.3, needed - 1)
    assert ablation.seeds_needed(pd.Series({"seeds": 3, "seed std": 1.0, "clip std": 5.0})) is None  # clips alone too wide


def test_run_all_trains_every_row_and_seed_once(tiny_corpus, tmp_path, monkeypatch):
    from asclib.data import DEVELOPMENT_DEVICES, DEVICES, load_index
    from conftest import TINY
    from test_train import TINY_TRAINING

    for variable, folder in (("ASC_RUNS_DIR", "runs"), ("ASC_CACHE_DIR", "cache"), ("ASC_AUGMENTED_DIR", "aug"),
                             ("ASC_RESULTS_DIR", "results")):
        monkeypatch.setenv(variable, str(tmp_path / folder))
    profile = dataclasses.replace(TINY, models=TINY_TRAINING.models, train=TINY_TRAINING.train,
                                  augment=dataclasses.replace(TINY.augment, crop_frames=32),
                                  ablation=AblationConfig(seeds=(0, 1), resnet_width=2, epochs=2))
    index = load_index(tiny_corpus, profile)
    results, correct = ablation.run_all(index, profile, with_notebook_04=False)
    labels = list(ablation.rows(with_notebook_04=False))  # the paper's rows, then those beyond it
    assert labels[:len(ablation.ROWS)] == list(ablation.ROWS) and labels[len(ablation.ROWS):] == list(ablation.BEYOND_PAPER)
    assert list(results["row"]) == [label for label in labels for _ in (0, 1)]
    assert set(ablation.COLUMNS) <= set(results.columns)
    evaluated = index[index["split"] == "evaluate"]
    assert list(correct.index) == sorted(evaluated["filename"])
    assert list(correct.columns[1:]) == [(label, seed) for label in labels for seed in (0, 1)]
    # the per-clip correctness and the accuracies are the same numbers ("overall": devices a to s6)
    first = correct[(labels[0], 0)]
    development = correct["device"].isin(DEVELOPMENT_DEVICES)
    assert results.loc[0, "overall"] == round(100 * first[development].mean(), 1)
    assert results.loc[0, "s7-s11"] == round(100 * first[correct["device"].isin(DEVICES[9:])].mean(), 1)
    folders = sorted((tmp_path / "runs" / "quick" / ablation.GROUP).iterdir())
    assert len(folders) == len(labels) * 2  # every row and seed is its own run
    entries = sorted(store.folder(profile).glob("*.npz"))
    assert len(entries) == len(labels) * 2  # each committed as it finished
    stamps = [entry.stat().st_mtime_ns for entry in entries]
    again, _ = ablation.run_all(index, profile, with_notebook_04=False)
    pd.testing.assert_frame_equal(results, again)
    assert stamps == [entry.stat().st_mtime_ns for entry in entries]  # read back: nothing retrained


def test_the_widths_of_the_steps_are_told_against_the_goal():
    """`describe_widths` counts the intervals within +-1.5 points and names each wider one with
    its width; `widths` picks the steps of the chosen rows in one group."""
    index = pd.MultiIndex.from_tuples([("+sa", "ResNet (mixup, crop)", "overall"), ("+sa", "ResNet (mixup, crop)", "s7-s11"),
                                       ("+sa+sc", "+sa", "overall"), ("+sa+sc+r+aug+dir", "+sa+sc+r+aug", "overall")],
                                      names=["step", "from", "group"])
    step_table = pd.DataFrame({"half width": [0.9, 3.0, 2.25, 1.5]}, index=index)
    paper_steps = ablation.widths(step_table, ablation.ROWS, "overall")
    assert paper_steps.to_dict() == {"+sa against ResNet (mixup, crop)": 0.9, "+sa+sc against +sa": 2.25}
    assert ablation.describe_widths(paper_steps, "The paper's steps", 3) == [
        "The paper's steps (over 3 seeds and the clips): 1 of 2 intervals are within +-1.5 points; "
        "wider: +sa+sc against +sa +-2.2."]
    beyond = ablation.widths(step_table, ablation.BEYOND_PAPER, "overall")
    assert ablation.describe_widths(beyond, "After", 1) == [
        "After (over the clips of one seed, without the seeds' part, which one seed cannot measure): "
        "1 of 1 intervals are within +-1.5 points."]


def test_describe_budget_says_when_the_seeds_spread_is_not_measured():
    table3 = pd.DataFrame({"overall": [70.0, 72.5], "overall std": [np.nan, np.nan]}, index=["a", "b"])
    one_seed = ablation.describe_budget(table3, 75.0, 50.0)
    assert one_seed[0].startswith("The 2 rows reach 70.0 to 72.5 % overall: 20.0 to 22.5 points above")
    assert one_seed[1].startswith("With one seed per row, how far seeds alone move a row is not measured here;")
    measured = ablation.describe_budget(table3.assign(**{"overall std": [0.5, 1.25]}), 75.0, 50.0)
    assert measured[1].startswith("Seeds alone move a row's overall accuracy by a standard deviation of 0.5 to 1.2 points;")
