"""The trainer: schedule, optimiser, batch order, resumption, determinism, predictions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from asclib import architectures, batches, evaluation, models, profiles, train
from asclib.profiles import get_profile

from conftest import PAPER, source_reads

QUICK = get_profile("quick")
_TINY = profiles.tiny(QUICK, epochs=2)
TINY_TRAINING = dataclasses.replace(
    _TINY, train=dataclasses.replace(_TINY.train, steps_per_epoch=3, batch_size=4, seeds=(0,)))


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    log_mels = rng.uniform(size=(24, QUICK.features.n_mels, 126)).astype(np.float32)
    return train.TrainingSet(log_mels, rng.integers(0, 10, 24), "random clips")


@pytest.fixture(autouse=True)
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("ASC_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_schedule_restarts_at_epochs_0_2_6_14_and_ends_at_the_bottom():
    steps = 10
    lrs = np.array([train.learning_rate(s, steps, QUICK, 0.0) for s in range(14 * steps)])
    jumps = np.where(np.diff(lrs) > 0)[0] + 1
    assert list(jumps) == [2 * steps, 6 * steps, 14 * steps][: len(jumps)] and len(jumps) == 2
    assert lrs[0] == pytest.approx(0.1) and lrs[-1] < 1e-3
    assert train.learning_rate(14 * steps, steps, QUICK, 0.0) == pytest.approx(0.1)
    assert train.learning_rate(1000, steps, QUICK, 1e-6) == pytest.approx(train.learning_rate(1000, steps, QUICK, 0) / 1.001)


def test_keras_sgd_follows_the_keras_update():
    weight = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = train.KerasSGD([{"params": [weight], "weight_decay": 0.5}], lr=0.1, momentum=0.9)
    velocity = torch.zeros(2)
    expected = weight.detach().clone()
    for lr in (0.1, 0.05):
        optimizer.param_groups[0]["lr"] = lr
        weight.grad = torch.tensor([0.3, 0.1])
        velocity = 0.9 * velocity - lr * (weight.grad + 0.5 * expected)
        expected = expected + velocity
        optimizer.step()
        assert torch.allclose(weight.detach(), expected)


def test_keras_sgd_equals_the_per_parameter_update_bit_for_bit():
    """The grouped (`_foreach`) update gives on a CPU exactly the per-parameter operations."""
    generator = torch.Generator().manual_seed(0)
    shapes = [(4, 3, 3, 3), (4,), (10, 4)]
    grouped = [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in shapes]
    single = [torch.nn.Parameter(p.detach().clone()) for p in grouped]
    optimizer = train.KerasSGD([{"params": grouped[:1], "weight_decay": 1e-3}, {"params": grouped[1:]}],
                               lr=0.1, momentum=0.9)
    velocities = [torch.zeros_like(p) for p in single]
    for lr in (0.1, 0.0731, 0.002):
        optimizer.param_groups[0]["lr"] = optimizer.param_groups[1]["lr"] = lr
        for mine, theirs in zip(grouped, single):
            mine.grad = torch.randn(mine.shape, generator=generator)
            theirs.grad = mine.grad.clone()
        optimizer.step()
        with torch.no_grad():
            for index, (parameter, velocity) in enumerate(zip(single, velocities)):
                gradient = parameter.grad.add(parameter, alpha=1e-3) if index == 0 else parameter.grad
                velocity.mul_(0.9).sub_(gradient, alpha=lr)
                parameter.add_(velocity)
    assert all(torch.equal(mine, theirs) for mine, theirs in zip(grouped, single))


def test_mixup_batches_walk_passes_and_restore_their_state():
    batches = train.MixupBatches(10, 2, np.random.default_rng(0))
    seen = [np.concatenate(batches.next()) for _ in range(2)]
    assert len(set(np.concatenate(seen))) == 8  # one pass: two steps of 4, 2 leftovers dropped
    state = batches.state_dict()
    after = [np.concatenate(batches.next()) for _ in range(3)]
    batches.load_state_dict(state)
    assert all(np.array_equal(a, np.concatenate(batches.next())) for a in after)
    with pytest.raises(ValueError, match="cannot fill one mixup step"):
        train.MixupBatches(3, 2, np.random.default_rng(0))


def _weights(run):
    return {k: v.clone() for k, v in run.model.state_dict().items()}


@pytest.mark.parametrize("name", ["resnet", "fsfcnn"])
def test_a_stopped_run_resumes_to_the_same_weights(name, data, runs, monkeypatch, tmp_path):
    whole = _weights(train.fit(name, 10, data, TINY_TRAINING, seed=1, progress=False))
    monkeypatch.setenv("ASC_RUNS_DIR", str(tmp_path / "other"))
    first = train.fit(name, 10, data, TINY_TRAINING, seed=1, stop_after=1, progress=False)
    assert first.history["epoch"].max() == 0
    resumed = train.fit(name, 10, data, TINY_TRAINING, seed=1, progress=False)
    assert len(resumed.history) == 6 and list(resumed.history["step"]) == list(range(6))
    again = _weights(resumed)
    assert all(torch.equal(whole[k], again[k]) for k in whole)


def test_same_seed_same_weights_and_another_seed_differs(data, monkeypatch, tmp_path):
    a = _weights(train.fit("fcnn", 10, data, TINY_TRAINING, seed=2, progress=False))
    monkeypatch.setenv("ASC_RUNS_DIR", str(tmp_path / "b"))
    b = _weights(train.fit("fcnn", 10, data, TINY_TRAINING, seed=2, progress=False))
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = _weights(train.fit("fcnn", 10, data, TINY_TRAINING, seed=3, progress=False))
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_a_finished_run_is_loaded_not_retrained(data, monkeypatch):
    done = train.fit("fcnn", 10, data, TINY_TRAINING, seed=0, progress=False)
    monkeypatch.setattr(train.KerasSGD, "step", lambda self: pytest.fail("trained again"))
    loaded = train.fit("fcnn", 10, data, TINY_TRAINING, seed=0, progress=False)
    assert len(loaded.history) == len(done.history) and loaded.seconds == done.seconds > 0
    assert all(torch.equal(a, b) for a, b in zip(done.model.state_dict().values(), loaded.model.state_dict().values()))


def test_checkpoint_of_another_model_or_profile_is_refused(data):
    run = train.fit("fcnn", 10, data, TINY_TRAINING, seed=0, progress=False)
    checkpoint = run.folder / train.CHECKPOINT
    with pytest.raises(train.CheckpointError, match=r"does not fit a 10-class resnet .*\(name: checkpoint 'fcnn', asked 'resnet'[,)]"):
        train.load_checkpoint(checkpoint, "resnet", 10, TINY_TRAINING)
    with pytest.raises(train.CheckpointError, match="3-class fcnn .*classes: checkpoint 10"):
        train.load_checkpoint(checkpoint, "fcnn", 3, TINY_TRAINING)
    with pytest.raises(train.CheckpointError, match="paper profile"):
        train.load_checkpoint(checkpoint, "fcnn", 10, PAPER)


def test_predictions_are_one_row_per_clip_keyed_by_filename(tmp_path, monkeypatch, data):
    monkeypatch.setenv("ASC_CACHE_DIR", str(tmp_path / "cache"))
    import soundfile as sf

    rows = []
    for k, device in enumerate(["a", "s4", "b"]):
        path = tmp_path / f"park-espoo-1-{k}-{device}.wav"
        sf.write(path, np.random.default_rng(k).standard_normal(64_000).astype(np.float32) * 0.1, 16_000)
        rows.append({"filename": f"audio/{path.name}", "path": str(path), "device": device, "scene": "park"})
    model = train.fit("fcnn", 10, data, TINY_TRAINING, seed=0, progress=False).model
    predictions = evaluation.predict(model, pd.DataFrame(rows), 10, TINY_TRAINING)
    assert list(predictions.columns[:3]) == ["filename", "device", "label"] and len(predictions) == 3
    assert np.allclose(predictions[list(train.classes_of(10))].sum(axis=1), 1, atol=1e-5)
    table = evaluation.accuracy(predictions)
    assert set(table.columns) >= {"a", "s4", "A", "s4-s6", "overall"}


def test_shuffling_the_index_keeps_each_filename_with_its_own_probabilities(tmp_path, monkeypatch, data):
    monkeypatch.setenv("ASC_CACHE_DIR", str(tmp_path / "cache"))
    import soundfile as sf

    rows = []
    for k in range(7):  # clips that differ in colour, so their probabilities differ
        path = tmp_path / f"bus-espoo-1-{k}-a.wav"
        white = np.random.default_rng(k).standard_normal(64_000)
        audio = np.cumsum(white) * 0.01 if k % 2 else white
        sf.write(path, (audio / np.abs(audio).max() * 0.5).astype(np.float32), 16_000)
        rows.append({"filename": f"audio/{path.name}", "path": str(path), "device": "a", "scene": "bus"})
    index = pd.DataFrame(rows)
    model = train.fit("fcnn", 10, data, TINY_TRAINING, seed=0, progress=False).model
    ordered = evaluation.predict(model, index, 10, TINY_TRAINING, batch_size=3).set_index("filename")
    shuffled = evaluation.predict(model, index.sample(frac=1, random_state=4), 10, TINY_TRAINING,
                             batch_size=3).set_index("filename")
    pd.testing.assert_frame_equal(ordered, shuffled.loc[ordered.index], atol=1e-6)
    assert ordered[list(train.classes_of(10))].duplicated().sum() == 0  # really clip-specific


def test_stored_predictions_are_made_again_for_other_code_clips_devices_or_labels(tmp_path, monkeypatch, data):
    """A run's `evaluation.csv` is reused only under its key (`evaluation.predictions_key`): the
    prediction code, and the evaluation clips with their devices and labels."""
    monkeypatch.setenv("ASC_CACHE_DIR", str(tmp_path / "cache"))
    import soundfile as sf

    rows = []
    for k, device in enumerate(["a", "b", "s4"]):
        path = tmp_path / f"park-espoo-1-{k}-{device}.wav"
        sf.write(path, np.random.default_rng(k).standard_normal(64_000).astype(np.float32) * 0.1, 16_000)
        rows.append({"filename": f"audio/{path.name}", "path": str(path), "device": device, "scene": "park",
                     "split": "evaluate"})
    index = pd.DataFrame(rows)
    run = train.fit("fcnn", 10, data, TINY_TRAINING, seed=0, progress=False)
    made = []
    real = evaluation.predict
    monkeypatch.setattr(evaluation, "predict", lambda *args, **kwargs: made.append(1) or real(*args, **kwargs))
    first = evaluation.run_predictions(run, index, TINY_TRAINING)
    pd.testing.assert_frame_equal(evaluation.run_predictions(run, index, TINY_TRAINING), first)
    assert len(made) == 1  # stored and reused
    relabelled = index.assign(scene=["park", "park", "bus"])
    assert list(evaluation.run_predictions(run, relabelled, TINY_TRAINING)["label"]) == ["park", "park", "bus"]
    moved = relabelled.assign(device=["a", "c", "s4"])
    assert list(evaluation.run_predictions(run, moved, TINY_TRAINING)["device"]) == ["a", "c", "s4"]
    assert len(made) == 3
    source = Path(evaluation.__file__).read_text()
    changed = source.replace("torch.softmax(model(x), dim=1)[:n]", "torch.softmax(model(x), dim=-1)[:n]")
    assert changed != source
    with source_reads(evaluation, changed):
        evaluation.run_predictions(run, moved, TINY_TRAINING)
    assert len(made) == 4


def test_accuracy_is_the_share_of_argmax_hits_per_device_and_group():
    classes = list(train.classes_of(3))
    hit, miss = [0.8, 0.1, 0.1], [0.1, 0.1, 0.8]  # true class "indoor" for every clip
    rows = [("a", hit), ("a", hit), ("a", miss), ("a", hit),  # a: 3/4
            ("b", hit), ("b", miss), ("c", miss), ("c", miss),  # b: 1/2, c: 0/2, B&C: 1/4
            ("s4", hit), ("s4", hit)]  # s4: 2/2
    table = pd.DataFrame([{"filename": f"f{i}", "device": d, "label": "indoor", **dict(zip(classes, p))}
                          for i, (d, p) in enumerate(rows)])
    result = evaluation.accuracy(table).iloc[0]
    assert (result["a"], result["b"], result["c"], result["s4"]) == (75.0, 50.0, 0.0, 100.0)
    assert (result["A"], result["B&C"], result["s4-s6"], result["overall"]) == (75.0, 25.0, 100.0, 60.0)
    assert np.isnan(result["s1"]) and np.isnan(result["s1-s3"])


@pytest.mark.parametrize("n_classes", [10, 3])
def test_training_set_keeps_each_clip_with_its_label_and_its_features(tiny_corpus, tmp_path, monkeypatch, n_classes):
    from asclib import data as asc_data, features
    from conftest import TINY

    monkeypatch.setenv("ASC_CACHE_DIR", str(tmp_path / "cache"))
    index = asc_data.load_index(tiny_corpus, TINY).sample(frac=1, random_state=1)  # any row order
    training = train.training_set(index, n_classes, TINY, ())
    by_path = index.set_index("path")
    assert len(training.paths) == len(training.labels) == (index["split"] == "train").sum()
    column = train.target_column(n_classes)
    expected = [train.classes_of(n_classes).index(str(by_path.loc[p, column])) for p in training.paths]
    assert list(training.labels) == expected
    for row in (0, len(training.paths) // 2, len(training.paths) - 1):
        audio = asc_data.load_audio(training.paths[row], TINY)
        assert np.allclose(training.log_mels[row], features.log_mel(audio, TINY), atol=1e-6)


def test_plateau_table_compares_the_last_epoch_of_each_cosine_cycle():
    assert train.cycle_ends(61) == [2, 6, 14, 30] and train.cycle_ends(62) == [2, 6, 14, 30, 62]
    epoch_losses = [2.0, 1.6, 1.5, 1.4, 1.3, 1.2]  # two steps per epoch, 6 epochs: cycles end at 2 and 6
    history = pd.DataFrame([(2 * e + k, e, 0.1, loss + (0.1 if k else -0.1))
                            for e, loss in enumerate(epoch_losses) for k in (0, 1)],
                           columns=["step", "epoch", "lr", "loss"])
    table = train.plateau_table(history)
    assert list(table.index) == [2, 6] and list(table["steps"]) == [4, 12]
    assert list(table["loss over its last epoch"]) == [1.6, 1.2]
    assert table["change from previous cycle %"].iloc[-1] == -25.0


def test_the_notebook_runs_trained_side_by_side_are_bit_for_bit_those_trained_alone(tiny_corpus, tmp_path, monkeypatch, runs):
    from asclib import data as asc_data
    from conftest import TINY

    profile = dataclasses.replace(TINY, models=TINY_TRAINING.models, train=TINY_TRAINING.train,
                                  augment=dataclasses.replace(TINY.augment, crop_frames=32))  # 1.5 s clips: 39 frames
    monkeypatch.setenv("ASC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ASC_AUGMENTED_DIR", str(tmp_path / "augmented"))
    profile = dataclasses.replace(profile, train=dataclasses.replace(profile.train, seeds=(5, 6)))
    index = asc_data.load_index(tiny_corpus, profile)
    train.fit_many(*train.unique_jobs(index, profile, data_seed=0), "training", workers=2)
    checkpoints = {(seed, folder.name.rsplit("-", 1)[0]): torch.load(folder / train.CHECKPOINT, weights_only=False)
                   for seed in (5, 6) for folder in (runs / "quick" / train.seed_group(seed)).iterdir()}
    assert sorted(checkpoints) == sorted((seed, f"{name}-{n}c") for name, n in architectures.notebook_runs() for seed in (5, 6))
    assert all(state["epoch"] == 2 for state in checkpoints.values())
    monkeypatch.setenv("ASC_RUNS_DIR", str(tmp_path / "alone"))
    alone = train.fit("fcnn", 10, train.training_set(index, 10, profile, train.recipe_of("fcnn")), profile, 6, progress=False)
    assert all(torch.equal(checkpoints[6, "fcnn-10c"]["model"][k], v) for k, v in alone.model.state_dict().items())
    # each model of an ensemble has its own batch order, and each seed its own
    orders = {key: state["batches"]["order"] for key, state in checkpoints.items()}
    assert orders[5, "fcnn-10c"] != orders[5, "fsfcnn-10c"] and orders[5, "fcnn-10c"] != orders[6, "fcnn-10c"]


def _keys_with(module, text: str, data) -> dict[str, Path]:
    """Every paper network's 10-class run folder while `module`'s source file reads `text`."""
    with source_reads(module, text, train.training_code_hash):
        return {name: train.run_folder(name, 10, TINY_TRAINING, 0, data) for name in ("resnet", "fcnn", "fsfcnn")}


def test_a_run_key_changes_with_its_own_code_not_with_prose_or_another_network(data):
    """A run's key hashes the trainer's modules and its own network's code: a docstring or
    comment keeps every run, a new network in asclib/models.py retrains nothing, a change to
    what one network uses retrains that network's runs alone, a change to the trainer all."""
    import ast

    before = {name: train.run_folder(name, 10, TINY_TRAINING, 0, data) for name in ("resnet", "fcnn", "fsfcnn")}
    source = Path(models.__file__).read_text()
    prose = source.replace('"""', '"""A reworded docstring. ', 1) + "\n# a comment\n"
    fifth = source + "\n\nclass FifthNet(nn.Module):\n    def forward(self, x):\n        return _bn(3)(x)\n"
    shortcut = "shortcut = same_avg_pool(x, 3, (1, 2))"
    assert shortcut in source  # the ResNet's residual shortcut, which the FCNNs do not use
    resnet_only = source.replace(shortcut, "shortcut = same_avg_pool(x, 3, (1, 2)) * 1.0")
    shared = source.replace("eps=1e-3", "eps=1e-4")  # BatchNorm of every network
    assert ast.parse(prose) and ast.parse(fifth) and ast.parse(resnet_only) and shared != source
    assert _keys_with(models, prose, data) == before
    assert _keys_with(models, fifth, data) == before
    changed = _keys_with(models, resnet_only, data)
    assert changed["resnet"] != before["resnet"] and changed["fcnn"] == before["fcnn"] and changed["fsfcnn"] == before["fsfcnn"]
    assert all(key != before[name] for name, key in _keys_with(models, shared, data).items())
    batch_code = Path(batches.__file__).read_text() + "\nEXTRA_CONSTANT = 1\n"  # a module training uses whole
    assert all(key != before[name] for name, key in _keys_with(batches, batch_code, data).items())


def test_a_new_network_registered_in_the_architectures_module_retrains_nothing(data):
    """A registration added to asclib/architectures.py leaves every other network's run key."""
    from asclib import architectures

    before = {name: train.run_folder(name, 10, TINY_TRAINING, 0, data) for name in ("resnet", "fcnn", "fsfcnn")}
    source = Path(architectures.__file__).read_text()
    registered = source + "\nregister(Architecture(name='fifth', title='Fifth', model_class=models.FCNN, seed_id=4, " \
        "widths={}, epochs={}, trained_for=(10,), augmentations=('mixup', 'random_crop'), weight_decay=0.0, " \
        "keras_decay=False, cam='gradcam', notebook='13_fifth', tiny_width=2))\n"
    assert _keys_with(architectures, registered, data) == before
    built = source.replace("models.initialise(model, profile.models.bn_momentum)",
                           "models.initialise(model, profile.models.bn_momentum)\n    model.extra = 1")
    assert built != source and all(key != before[name] for name, key in _keys_with(architectures, built, data).items())


def test_a_run_key_holds_its_own_seed_not_the_profiles_list_of_seeds(data):
    """Adding seeds to a profile trains only the new seeds' runs; another seed is another run."""
    more = dataclasses.replace(TINY_TRAINING, train=dataclasses.replace(TINY_TRAINING.train, seeds=(0, 1, 2, 3, 4)))
    assert train.run_folder("fcnn", 10, more, 0, data) == train.run_folder("fcnn", 10, TINY_TRAINING, 0, data)
    assert train.run_folder("fcnn", 10, more, 1, data) != train.run_folder("fcnn", 10, more, 0, data)


def test_a_checkpoint_holds_only_tensors_and_plain_values(data):
    run = train.fit("fcnn", 10, data, TINY_TRAINING, seed=0, progress=False)
    state = torch.load(run.folder / train.CHECKPOINT, weights_only=True)  # refuses anything else
    assert state["metadata"]["name"] == "fcnn" and ("fcnn", 10, (2, 2, 4)) in state["profile"]["models"]["widths"]
    assert isinstance(state["batches"]["order"], list) and all(type(lr) is float for _, _, lr, _ in state["history"])


class _RunsCode:
    """Unpickled, it would run `touch marker` (what a crafted checkpoint could do with anything)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch '{self.marker}'",)


def test_a_crafted_checkpoint_is_refused_without_running_its_code(tmp_path, data):
    marker = tmp_path / "marker"
    crafted = tmp_path / "crafted" / train.CHECKPOINT
    crafted.parent.mkdir()
    torch.save({"model": _RunsCode(marker), "metadata": {}}, crafted)
    with pytest.raises(train.CheckpointError, match=r"cannot be loaded safely \(.*system.*\).*Delete its run folder"):
        train.load_checkpoint(crafted, "fcnn", 10, TINY_TRAINING)
    assert not marker.exists()
    torch.load(crafted, weights_only=False)  # the file really is harmful when unpickled blindly
    assert marker.exists()


def test_a_checkpoint_of_an_older_version_is_refused_with_advice(data):
    run = train.fit("fcnn", 10, data, TINY_TRAINING, seed=0, progress=False)
    path = run.folder / train.CHECKPOINT
    state = torch.load(path, weights_only=True)
    state["batches"]["order"] = np.asarray(state["batches"]["order"])  # as older versions stored it
    torch.save(state, path)
    with pytest.raises(train.CheckpointError, match=r"numpy.*older asclib versions.*Delete its run folder"):
        train.fit("fcnn", 10, data, TINY_TRAINING, seed=0, progress=False)
    (tmp := path.with_name("garbage.pt")).write_bytes(b"not a checkpoint")
    with pytest.raises(train.CheckpointError, match="or it is not a checkpoint"):
        train.read_checkpoint(tmp)


def test_a_recipe_must_mix_crop_and_match_its_training_clips(data, tmp_path, monkeypatch):
    monkeypatch.setenv("ASC_RUNS_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="a training step always mixes and crops its batches"):
        train.fit("fcnn", 10, data, TINY_TRAINING, augmentations=("mixup", "spec_augment"), progress=False)
    with_clips = dataclasses.replace(data, methods=("noise",))
    with pytest.raises(ValueError, match=r"holds the clips of \('noise',\) offline augmentations, the recipe of "
                                         r"this fcnn run asks for \('spectrum_correction', "):
        train.fit("fcnn", 10, with_clips, TINY_TRAINING, progress=False)
    plain = train.fit("fcnn", 10, data, TINY_TRAINING, augmentations=("mixup", "random_crop"), progress=False)
    masked = train.fit("fcnn", 10, data, TINY_TRAINING, augmentations=("random_crop", "spec_augment", "mixup"),
                       progress=False)
    assert plain.folder != masked.folder == train.run_folder("fcnn", 10, TINY_TRAINING, 0, data)


def test_only_the_code_that_trains_enters_a_run_key(data):
    """Editing a function of train.py that training does not run (a summary) keeps every run;
    editing `fit` or what it uses changes every run's key."""
    before = {name: train.run_folder(name, 10, TINY_TRAINING, 0, data) for name in ("resnet", "fcnn", "fsfcnn")}
    source = Path(train.__file__).read_text()
    summary_line = '"steps": len(history),'
    step_line = "optimizer.step()"
    assert summary_line in source and step_line in source
    elsewhere = source.replace(summary_line, '"steps": len(history) + 0,')
    in_training = source.replace(step_line, "optimizer.step()\n    loss = loss * 1.0")
    assert _keys_with(train, elsewhere, data) == before
    changed = _keys_with(train, in_training, data)
    assert all(changed[name] != before[name] for name in before)


def test_the_clips_fingerprint_is_the_same_in_every_clone_and_follows_the_settings(tiny_corpus, tmp_path, monkeypatch):
    """Two copies of one made data set (another path, other modification times) give one
    fingerprint, so run keys agree between clones; other settings in its manifest give another;
    a data set not made here (no manifest) is identified by its clips' paths, sizes and times."""
    import json
    import shutil

    from asclib import data as asc_data, synth
    from conftest import TINY

    monkeypatch.setenv("ASC_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "clone" / "corpus"
    shutil.copytree(tiny_corpus, copy)

    def fingerprint(folder):
        index = asc_data.load_index(folder, TINY)
        return train.clips_fingerprint(index[index["split"] == "train"], TINY)

    original = fingerprint(tiny_corpus)
    assert fingerprint(copy) == original
    manifest = json.loads((copy / synth.MANIFEST).read_text())
    manifest["settings"]["kernels"] = {"ATEN_CPU_CAPABILITY": None}  # the caps: in the run key, not here
    (copy / synth.MANIFEST).write_text(json.dumps(manifest))
    assert fingerprint(copy) == original
    manifest["settings"]["seed"] += 1
    (copy / synth.MANIFEST).write_text(json.dumps(manifest))
    assert fingerprint(copy) != original
    (copy / synth.MANIFEST).unlink()
    unmade = fingerprint(copy)
    assert unmade != original
    other = tmp_path / "elsewhere" / "corpus"
    shutil.copytree(copy, other)
    assert fingerprint(other) != unmade
