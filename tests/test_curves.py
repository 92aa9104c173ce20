"""Training curves for TensorBoard (asclib.curves): every step's loss and learning rate, written
while a run trains, a resumed run's curve without repeated steps, and the accuracy by device."""

from __future__ import annotations

import pandas as pd
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from asclib import curves, train
from test_train import TINY_TRAINING, data, runs  # noqa: F401  (fixtures: random clips, runs in tmp)


def scalars(run_folder) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_folder / curves.FOLDER))
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_a_run_logs_every_steps_loss_and_learning_rate_and_a_resumed_run_repeats_none(data):
    train.fit("resnet", 10, data, TINY_TRAINING, seed=1, stop_after=1, progress=False)
    run = train.fit("resnet", 10, data, TINY_TRAINING, seed=1, progress=False)
    logged = scalars(run.folder)
    for tag, column in (("train/loss", "loss"), ("train/learning_rate", "lr")):
        steps = [step for step, _ in logged[tag]]
        assert sorted(steps) == list(run.history["step"]), tag  # every step once, also across the resume
        values = dict(logged[tag])
        assert all(abs(values[step] - value) < 1e-6 * max(1.0, abs(value))
                   for step, value in zip(run.history["step"], run.history[column])), tag


def test_the_accuracy_by_device_is_logged_at_the_last_step(tmp_path):
    accuracy = pd.DataFrame({"a": [50.0], "s7-s11": [20.0], "overall": [40.0]}, index=["accuracy %"])
    curves.log_accuracy(tmp_path, accuracy, 12)
    assert scalars(tmp_path) == {"evaluation/a": [(12, 50.0)], "evaluation/s7-s11": [(12, 20.0)],
                                 "evaluation/overall": [(12, 40.0)]}
