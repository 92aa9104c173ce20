"""The committed runs (asclib/store.py): entries written as runs end, read back as trained, the
same key in every clone, refused when edited, and the sample check that trains runs again."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from asclib import architectures, data, evaluation, kernels, predict, runs, store, train
from conftest import TINY
from test_train import TINY_TRAINING


@pytest.fixture
def tiny(tiny_corpus, tmp_path, monkeypatch):
    """The tiny corpus's index, its 2-epoch profile and the notebooks' jobs, every folder in tmp_path."""
    for variable, folder in (("ASC_RUNS_DIR", "runs"), ("ASC_CACHE_DIR", "cache"),
                             ("ASC_AUGMENTED_DIR", "augmented"), ("ASC_RESULTS_DIR", "results")):
        monkeypatch.setenv(variable, str(tmp_path / folder))
    profile = dataclasses.replace(TINY, models=TINY_TRAINING.models, train=dataclasses.replace(TINY_TRAINING.train, seeds=(0, 1)),
                                  augment=dataclasses.replace(TINY.augment, crop_frames=32))
    index = data.load_index(tiny_corpus, profile)
    jobs, sets = train.notebook_jobs(index, profile)
    return index, profile, jobs, sets


def test_every_run_gets_an_entry_as_trained_and_a_second_call_trains_nothing(tiny, tmp_path):
    index, profile, jobs, sets = tiny
    stored = store.finished(jobs + jobs[:2], sets, index, workers=2)  # two jobs listed twice: one run each
    entries = sorted(store.folder(profile).glob("*.npz"))
    assert len(entries) == len(jobs) == 2 * len(architectures.notebook_runs())
    assert (store.folder(profile) / store.CLIPS).is_file()
    clips = store.evaluation_clips(index)
    for job, entry in zip(jobs, stored):
        run = train.fit(**{**job, "data": sets[job["data"]]}, progress=False)  # finished: loaded, not trained
        assert (entry.name, entry.n_classes, entry.seed) == (job["name"], job["n_classes"], job["seed"])
        here = store.predictions(run.model, clips, run.n_classes, profile)
        assert np.array_equal(entry.predictions.iloc[:, 3:].to_numpy(),
                              store.as_float16(here, run.n_classes).astype(np.float64))
        assert list(entry.predictions["filename"]) == list(clips["filename"])
        assert np.array_equal(entry.history["loss"].to_numpy(), run.history["loss"].to_numpy(np.float32).astype(float))
        assert entry.history["epoch"].tolist() == run.history["epoch"].tolist()
        assert entry.seconds == run.seconds and entry.made["commit"] is not None
        if store.keeps_weights(job):  # the first seed's notebook runs keep their weights
            assert all(torch.equal(a, b) for a, b in zip(entry.model(profile).state_dict().values(),
                                                          run.model.state_dict().values()))
        else:
            with pytest.raises(FileNotFoundError, match="keeps no weights"):
                entry.model(profile)
    # `predict` reads the kept weights as it reads run folders (its default without them here)
    found = predict.find_runs([store.folder(profile)])
    assert sorted((run.name, run.n_classes) for run in found) == sorted(architectures.notebook_runs())
    assert all(run.finished and run.profile == profile for run in found)
    before = {path: path.stat().st_mtime_ns for path in entries}
    again = store.finished(jobs, sets, index)
    assert {path: path.stat().st_mtime_ns for path in entries} == before
    assert [entry.path for entry in again] == [entry.path for entry in stored[:len(jobs)]]


def test_an_entry_key_leaves_out_the_machine_and_follows_the_recipe(tiny, monkeypatch):
    """The same recipe on a machine with other kernel caps reads the same entry (its run folder
    differs); another seed or another evaluation label gives another entry."""
    index, profile, jobs, sets = tiny
    job, clips = jobs[0], store.evaluation_clips(index)
    data_set = sets[job["data"]]
    path, folder = store.entry_path(job, data_set, clips), train.job_folder(job, sets)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    assert kernels.settings() != kernels.AVX2_CAPS
    assert store.entry_path(job, data_set, clips) == path and train.job_folder(job, sets) != folder
    assert store.entry_path({**job, "seed": job["seed"] + 1}, data_set, clips) != path
    relabelled = clips.assign(scene=clips["scene"].iloc[::-1].to_numpy())
    assert store.entry_path(job, data_set, relabelled) != path


def test_an_entry_with_one_number_changed_is_refused(tiny, tmp_path):
    index, profile, jobs, sets = tiny
    entry = store.finished(jobs[:1], sets, index, workers=1)[0]
    with np.load(entry.path) as stored:
        arrays = dict(stored)
    arrays["probabilities"] = arrays["probabilities"].copy()
    arrays["probabilities"][5, 0] += np.float16(0.25)
    with open(entry.path, "wb") as file:
        np.savez_compressed(file, **arrays)
    with pytest.raises(ValueError, match="changed after it was written"):
        store.read(entry.path, store.evaluation_clips(index))


def test_the_sample_check_trains_runs_again_and_finds_a_changed_one(tiny, monkeypatch):
    """The sample is chosen by the commit, retrains bit for bit here, and a run whose entry does
    not match what its code trains (here: its waypoint's predictions) fails the check."""
    index, profile, jobs, sets = tiny
    store.finished(jobs, sets, index, workers=2)
    paths_of = [store.entry_path(job, sets[job["data"]], store.evaluation_clips(index)) for job in jobs]
    assert store.sample(paths_of, "commit a", 2) == store.sample(paths_of, "commit a", 2)
    assert len({tuple(store.sample(paths_of, f"commit {k}", 2)) for k in range(8)}) > 1
    table = store.check(jobs, sets, index, "commit a", count=2, workers=2)
    assert len(table) == 2 and table["passed"].all() and table["loss and predictions identical"].all()
    assert set(table["compared"]) == {"bit for bit"}
    first = paths_of[table["job"].iloc[0]]
    with np.load(first) as stored:
        arrays = dict(stored)
    arrays["waypoint"] = arrays["waypoint"].copy()
    arrays["waypoint"][:, [0, 1]] = arrays["waypoint"][:, [1, 0]]  # another run's predictions, as it were
    arrays["digest"] = np.str_(store.digest(arrays))
    with open(first, "wb") as file:
        np.savez_compressed(file, **arrays)
    table = store.check(jobs, sets, index, "commit a", count=2, workers=2)
    assert table.set_index("entry").loc[first.name, "passed"] == False  # noqa: E712
    assert table["passed"].sum() == 1


def test_everything_retrains_each_run_to_its_end(tiny):
    index, profile, jobs, sets = tiny
    store.finished(jobs, sets, index, workers=2)
    table = store.check(jobs, sets, index, "any commit", everything=True, workers=2)
    assert len(table) == len(jobs) and table["passed"].all()
    assert (table["epochs retrained"] == [job["profile"].epochs(job["name"]) for job in jobs]).all()


def test_without_the_avx2_caps_the_check_allows_the_one_ulp_spread(tiny, monkeypatch):
    """An entry made under other kernel caps is compared within the one-ulp replicate's spread
    for its model, and the check says so."""
    spread = store.one_ulp_spread()
    assert set(spread) == {f"{name}-{n}c" for name, n in architectures.notebook_runs()}
    assert all(0 < value < 100 for value in spread.values())
    assert not store.bit_exact_here({"kernels": {**kernels.AVX2_CAPS, "ATEN_CPU_CAPABILITY": "default"}})
    assert store.bit_exact_here({"kernels": kernels.settings()}) == (kernels.settings() == kernels.AVX2_CAPS)


def test_runs_check_sample_names_each_run(tiny, monkeypatch):
    index, profile, jobs, sets = tiny
    profile = dataclasses.replace(profile, ablation=dataclasses.replace(profile.ablation, seeds=(0,), epochs=2))
    monkeypatch.setattr(runs, "every_job", lambda *args, **kwargs: (jobs, sets))
    store.finished(jobs, sets, index, workers=2)
    origin, table = runs.check_sample(index, profile, "commit b", count=2)
    assert table["run"].str.fullmatch(r"\S+-\d+c seed \d").all() and table["passed"].all()
    assert "CPU-hours" in origin and origin == store.origin(store.finished(jobs, sets, index))


def test_evaluation_predictions_are_made_as_training_makes_them(tiny):
    """An entry's predictions are those of `evaluation.predict` with the training's thread count."""
    index, profile, jobs, sets = tiny
    job = jobs[-1]
    run = train.fit(**{**job, "data": sets[job["data"]]}, progress=False)
    clips = store.evaluation_clips(index)
    with train.torch_threads(train.TRAIN_THREADS):
        direct = evaluation.predict(run.model, clips, run.n_classes, profile)
    assert direct.equals(store.predictions(run.model, clips, run.n_classes, profile))


def test_the_training_cost_sums_the_committed_seconds(tiny, monkeypatch):
    index, profile, jobs, sets = tiny
    monkeypatch.setattr(runs, "every_job", lambda *args, **kwargs: (jobs, sets))
    stored = store.finished(jobs, sets, index, workers=2)
    cost = runs.training_cost(index, profile, cores=(2, 8))
    assert list(cost.index) == ["models of notebooks 04-06", "all"]
    assert cost.loc["all", "runs"] == len(jobs)
    assert cost.loc["all", "CPU hours"] == round(sum(run.seconds for run in stored) / 3600, 2)
    assert cost.loc["all", "hours on 8 cores"] == round(sum(run.seconds for run in stored) / 3600 / 8, 2)


def test_the_clips_key_leaves_out_what_the_machine_decides(tiny_corpus, tmp_path):
    """A data set's recorded kernel caps and feature store (both the machine's) do not change
    the clips' key; another seed in its settings does; a set not made here, or made in memory,
    keeps its own fingerprint."""
    import json
    import shutil

    from asclib import synth

    copy = tmp_path / "set"
    shutil.copytree(tiny_corpus, copy)
    paths = tuple(sorted(str(path) for path in (copy / "audio").glob("*.wav"))[:5])
    data = train.TrainingSet(np.zeros((5, 2, 2), np.float32), np.zeros(5, dtype=np.int64), "its fingerprint", paths)
    manifest = json.loads((copy / synth.MANIFEST).read_text())
    first = store.clips_key(data)
    assert first != "its fingerprint"
    manifest["settings"].update(kernels={"ATEN_CPU_CAPABILITY": None}, log_mels="another feature store")
    (copy / synth.MANIFEST).write_text(json.dumps(manifest))
    assert store.clips_key(data) == first
    manifest["settings"]["seed"] += 1
    (copy / synth.MANIFEST).write_text(json.dumps(manifest))
    assert store.clips_key(data) != first
    (copy / synth.MANIFEST).unlink()
    assert store.clips_key(data) == "its fingerprint"
    assert store.clips_key(dataclasses.replace(data, paths=())) == "its fingerprint"
