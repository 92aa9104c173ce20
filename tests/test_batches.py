"""Batches built in torch on the training device: the reference's numpy batches, bit for bit on a
CPU; bf16 training; the errors of a full disk and of a GPU out of memory."""

from __future__ import annotations

import dataclasses
import errno

import numpy as np
import pytest
import torch

from asclib import batches, features, profiles, train
from asclib.profiles import get_profile
from asclib.files import DiskFullError

from test_train import TINY_TRAINING, data, runs  # noqa: F401  (fixtures: random clips, runs in tmp)


# The reference's online augmentations in numpy, as its code does them: the reference the torch
# functions of the training path (asclib.batches) are held to.

def _spec_augment(batch: np.ndarray, freq_max: int, time_max: int, rng) -> np.ndarray:
    out = batch.copy()
    draws = batches.spec_augment_draws(batch.shape, freq_max, time_max, rng)
    for (b, c), (freq_start, freq_width, time_start, time_width) in zip(np.ndindex(batch.shape[:2]),
                                                                       draws.reshape(-1, 4)):
        out[b, c, freq_start:freq_start + freq_width, :] = 0
        out[b, c, :, time_start:time_start + time_width] = 0
    return out


def _random_crop(batch: np.ndarray, frames: int, rng) -> np.ndarray:
    starts = batches.crop_starts(len(batch), batch.shape[-1], frames, rng)
    return np.stack([x[..., s:s + frames] for x, s in zip(batch, starts)])


def _mixup(x1, y1, x2, y2, alpha: float, rng):
    weight = batches.mixup_weights(len(x1), alpha, rng, x1.dtype)
    x_weight = weight.reshape((-1,) + (1,) * (x1.ndim - 1))
    y_weight = weight.reshape((-1,) + (1,) * (y1.ndim - 1))
    return x_weight * x1 + (1 - x_weight) * x2, y_weight * y1 + (1 - y_weight) * y2


def _numpy_batch(log_mels, labels, chosen, n_classes, masked, profile, rng):
    """The batch as the reference's numpy code makes it (its order of draws)."""
    x = features.network_inputs(log_mels[chosen])
    if masked:
        x = _spec_augment(x, profile.augment.freq_mask_max, profile.augment.time_mask_max, rng)
    x = _random_crop(x, profile.augment.crop_frames, rng)
    return x, np.eye(n_classes, dtype=np.float32)[labels[chosen]]


@pytest.mark.parametrize("profile_name", ["quick", "paper"])
@pytest.mark.parametrize("masked", [False, True])
def test_torch_batches_equal_the_numpy_functions_bit_for_bit(profile_name, masked):
    profile = get_profile(profile_name)
    rng = np.random.default_rng(5)
    log_mels = rng.uniform(size=(70, profile.features.n_mels, features.frame_count(profile))).astype(np.float32)
    labels = rng.integers(0, 10, 70)
    first, second = train.MixupBatches(70, 32, np.random.default_rng(2)).next()
    reference_rng, torch_rng = np.random.default_rng(1), np.random.default_rng(1)
    x1, y1 = _numpy_batch(log_mels, labels, first, 10, masked, profile, reference_rng)
    x2, y2 = _numpy_batch(log_mels, labels, second, 10, masked, profile, reference_rng)
    x, y = _mixup(x1, y1, x2, y2, profile.augment.mixup_alpha, reference_rng)
    draws = batches.draw(first, second, masked, profile, torch_rng)
    assert torch_rng.bit_generator.state == reference_rng.bit_generator.state  # same draws, same order
    for share in (slice(0, 32), slice(8, 16)):  # one process, and rank 1 of 4
        cpu = torch.device("cpu")
        built_x, built_y = batches.assemble(batches.host_batch(log_mels, labels, draws, share, 10, cpu), profile, cpu)
        assert np.array_equal(built_x.numpy(), x[share]) and np.array_equal(built_y.numpy(), y[share])


def test_masks_and_crops_touch_what_they_say():
    x = torch.ones(1, 1, 6, 10)
    masked = batches.mask(x, torch.tensor([[[1, 2, 7, 3]]]))
    assert masked[0, 0, 1:3].eq(0).all() and masked[0, 0, :, 7:10].eq(0).all()
    assert int(masked.sum()) == 60 - 2 * 10 - 4 * 3
    ramp = torch.arange(10.0).expand(2, 3, 6, 10)
    assert batches.crop(ramp, torch.tensor([0, 4]), 5)[:, 0, 0].tolist() == [[0, 1, 2, 3, 4], [4, 5, 6, 7, 8]]


@pytest.fixture(autouse=True)
def default_precision(monkeypatch):
    monkeypatch.delenv("ASC_PRECISION", raising=False)


def test_bf16_training_follows_the_float32_loss_curve(data):
    longer = profiles.resized(TINY_TRAINING, epochs={"fcnn": 6})
    longer = dataclasses.replace(longer, train=dataclasses.replace(longer.train, steps_per_epoch=5))
    fp32 = train.fit("fcnn", 10, data, longer, progress=False)
    bf16 = train.fit("fcnn", 10, data, longer, progress=False, precision="bf16")
    assert bf16.folder != fp32.folder  # another run, never mistaken for the float32 one
    assert fp32.folder == train.run_folder("fcnn", 10, longer, 0, data)  # float32 keys as before
    first = abs(bf16.history["loss"][0] / fp32.history["loss"][0] - 1)
    assert 0 < first < 0.01, first  # the same weights and batch: only the arithmetic differs
    means = [run.history.groupby("epoch")["loss"].mean() for run in (bf16, fp32)]
    assert ((means[0] / means[1] - 1).abs() < 0.05).all(), means


def test_an_unknown_precision_is_refused(data, monkeypatch):
    monkeypatch.setenv("ASC_PRECISION", "fp8")
    with pytest.raises(ValueError, match="ASC_PRECISION='fp8': expected one of fp32, bf16"):
        train.fit("fcnn", 10, data, TINY_TRAINING, progress=False)


def test_out_of_memory_names_the_setting_to_lower(data, monkeypatch):
    def no_memory(*args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(train, "training_step", no_memory)
    with pytest.raises(torch.OutOfMemoryError, match=r"4 clips per process \(global batch 4\).*torchrun.*"
                                                     r"train.batch_size.*Tried to allocate 2.00 GiB"):
        train.fit("fcnn", 10, data, TINY_TRAINING, progress=False)


def test_a_full_disk_while_checkpointing_keeps_the_last_checkpoint(data, monkeypatch):
    run = train.fit("fcnn", 10, data, TINY_TRAINING, stop_after=1, progress=False)
    checkpoint = run.folder / train.CHECKPOINT
    before = checkpoint.read_bytes()

    def full_disk(self, content):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("pathlib.Path.write_bytes", full_disk)
    with pytest.raises(DiskFullError, match=f"writing {checkpoint} .its previous version is left intact"):
        train.fit("fcnn", 10, data, TINY_TRAINING, progress=False)
    monkeypatch.undo()
    assert checkpoint.read_bytes() == before and not list(run.folder.glob(".*partial*"))
    finished = train.fit("fcnn", 10, data, TINY_TRAINING, progress=False)  # resumes from epoch 1
    assert len(finished.history) == 2 * TINY_TRAINING.train.steps_per_epoch


@pytest.mark.parametrize("background", [False, True])
def test_a_stream_gives_the_plain_loops_batches_and_draws_no_further(background):
    profile = get_profile("quick")
    rng = np.random.default_rng(4)
    log_mels = rng.uniform(size=(70, profile.features.n_mels, features.frame_count(profile))).astype(np.float32)
    labels = rng.integers(0, 10, 70)
    cpu, everything = torch.device("cpu"), slice(0, 32)
    plain_order, plain_rng = train.MixupBatches(70, 32, np.random.default_rng(2)), np.random.default_rng(3)
    expected = [batches.assemble(batches.host_batch(log_mels, labels,
                                                    batches.draw(*plain_order.next(), True, profile, plain_rng),
                                                    everything, 10, cpu), profile, cpu) for _ in range(3)]
    order, stream_rng = train.MixupBatches(70, 32, np.random.default_rng(2)), np.random.default_rng(3)
    got = list(batches.stream(log_mels, labels, order, 3, True, everything, 10, profile, stream_rng, cpu,
                              background=background))
    assert len(got) == 3
    assert all(torch.equal(x, ex) and torch.equal(y, ey) for (x, y), (ex, ey) in zip(got, expected))
    assert stream_rng.bit_generator.state == plain_rng.bit_generator.state  # nothing drawn ahead of the last step
    assert order.state_dict()["position"] == plain_order.state_dict()["position"]
