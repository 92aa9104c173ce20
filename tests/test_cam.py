"""Class activation maps: on the input grid for any length, where the evidence is, cells at their
receptive-field centres, Grad-CAM's bookkeeping, every refusal; and the CAM figure."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from asclib import architectures, cam, plots
from asclib.profiles import get_profile

NAMES = ("resnet", "fcnn", "fsfcnn")
QUICK = get_profile("quick")
MELS = QUICK.features.n_mels
FRAMES = (80, 112, 118, 150)  # shorter than the quick training crop (112), the crop, the full clip, longer


def _model(name: str) -> nn.Module:
    torch.manual_seed(0)
    return architectures.build(name, 10, QUICK)


def _probe(name: str) -> nn.Module:
    """A model that carries its input through unchanged in shape: every convolution passes only
    its centre tap (the mean over input channels), the channel attention is a constant 0.5, and
    fresh BatchNorms are (almost) the identity. Whatever lights its maps is where the input is."""
    model = _model(name)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.zero_()
                module.weight[:, :, module.kernel_size[0] // 2, module.kernel_size[1] // 2] = 1 / module.in_channels
            elif isinstance(module, nn.Linear):
                module.weight.zero_()
    return model


@pytest.mark.parametrize("frames", FRAMES)
@pytest.mark.parametrize("method", cam.METHODS)
@pytest.mark.parametrize("name", NAMES)
def test_maps_lie_on_the_input_grid_scaled_to_one(name, method, frames):
    x = torch.rand(2, 3, MELS, frames)
    result = cam.maps(_model(name), x, method=method)
    assert result.shape == (2, MELS, frames) and result.dtype == np.float32
    assert result.min() >= 0 and np.allclose(result.max(axis=(1, 2)), 1)
    np.testing.assert_array_equal(cam.maps(_model(name), x.numpy(), method=method), result)


def _event_found(result: np.ndarray, bands: slice, frames: slice) -> bool:
    """The map reaches its maximum inside the event and its centre of mass lies inside it."""
    centres = [(result.sum(axis=1 - axis) * np.arange(result.shape[axis])).sum() / result.sum() for axis in (0, 1)]
    return bool(result[bands, frames].max() == result.max()
                and bands.start <= centres[0] < bands.stop and frames.start <= centres[1] < frames.stop)


@pytest.mark.parametrize("frames", FRAMES)
@pytest.mark.parametrize("method", cam.METHODS)
@pytest.mark.parametrize("name", NAMES)
def test_an_event_is_mapped_where_it_happens(name, method, frames):
    bands, span = slice(MELS - 18, MELS - 2), slice(frames // 8, frames // 8 + 32)  # high bands, early on
    x = np.zeros((1, 3, MELS, frames), np.float32)
    x[:, :, bands, span] = 1
    result = cam.maps(_probe(name), x, method=method)[0]
    assert _event_found(result, bands, span)
    # the check can fail: a map upside down or backwards in time is not where the event is
    assert not _event_found(result[::-1], bands, span)
    assert not _event_found(result[:, ::-1], bands, span)


# TensorFlow's "same" padding with kernel 3 and stride 2 pads an even axis at its end only and an
# odd one at both ends, so the first cell's centre is input frame 1 or 0 at each of the ResNet's
# four time-strided layers: 112 -> 56 -> 28 -> 14 -> 7 is even throughout (16 j + 15),
# 118 -> 59 -> 30 -> 15 -> 8 alternates (1 + 4 x 1 = 5: 16 j + 5).
@pytest.mark.parametrize("frames, first", [(112, 15), (118, 5)])
def test_resnet_cells_sit_where_an_impulse_reaches_them_most(frames, first):
    impulses = np.zeros((frames, 3, MELS, frames), np.float32)
    impulses[np.arange(frames), :, :, np.arange(frames)] = 1  # clip t: a click on frame t
    with torch.no_grad():
        response = _probe("resnet").eval().class_maps(torch.from_numpy(impulses))[:, 0].mean(dim=1)
    centres = first + 16 * np.arange(math.ceil(frames / 16))
    assert response.argmax(dim=0).tolist() == centres.tolist()


@pytest.mark.parametrize("name, frames, bands, cells", [
    ("resnet", 112, (1, 0), (16, 15)),  # frequency is never strided
    ("resnet", 118, (1, 0), (16, 5)),
    ("fcnn", 118, (16, 7), (16, 7)),  # stride-2 conv (centre 2 j), three 2 x 2 pools (+ 0.5 each)
    ("fsfcnn", 118, (4, 3), (32, 21)),  # "same" paddings: 1, then +0, +4, +0, +16 in time
])
def test_cam_passes_through_the_class_map_at_each_cells_centre(name, frames, bands, cells):
    model = _model(name).eval()
    x = torch.rand(3, 3, MELS, frames)
    with torch.no_grad():
        class_maps = model.class_maps(x)
    chosen = class_maps[torch.arange(3), class_maps.mean(dim=(2, 3)).argmax(dim=1)].clamp(min=0).numpy()
    rows = bands[0] * np.arange(chosen.shape[1]) + bands[1]
    columns = cells[0] * np.arange(chosen.shape[2]) + cells[1]
    result = cam.maps(model, x, method="cam")
    np.testing.assert_allclose(result[:, rows][:, :, columns], chosen / chosen.max(axis=(1, 2), keepdims=True),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_grad_cam_of_the_class_maps_is_cam(name):
    # the logit is the class map's mean, so its gradient weights that map alone, uniformly
    x = torch.rand(2, 3, MELS, 118)
    np.testing.assert_allclose(cam.maps(_model(name), x, method="gradcam", layer="head"),
                               cam.maps(_model(name), x, method="cam"), atol=1e-5)


def test_grad_cam_leaves_the_model_as_it_found_it():
    model = _model("fcnn").train()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with torch.no_grad():  # Grad-CAM needs gradients even where the caller turned them off
        result = cam.maps(model, torch.rand(2, 3, MELS, 118))
    assert result.max() == 1 and model.training
    assert all(parameter.grad is None for parameter in model.parameters())
    assert not any(module._forward_hooks for module in model.modules())
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())


def test_classes_choose_the_maps():
    model, x = _model("resnet"), torch.rand(3, 3, MELS, 118)
    predicted = model.eval()(x).argmax(dim=1).tolist()
    np.testing.assert_array_equal(cam.maps(model, x), cam.maps(model, x, classes=predicted))
    np.testing.assert_array_equal(cam.maps(model, x, classes=4), cam.maps(model, x, classes=[4, 4, 4]))
    assert not np.allclose(cam.maps(model, x, classes=4), cam.maps(model, x, classes=5))


def test_default_methods():
    assert [cam.default_method(_model(name)) for name in NAMES] == ["cam", "gradcam", "gradcam"]


@pytest.mark.parametrize("name, options, message", [
    ("plain", {}, "no class activation maps: no registered architecture builds a Sequential: "
                  "asclib.architectures has ResNet, FCNN, FsFCNN"),
    ("plain", {"method": "gradcam"}, "no class activation maps: no registered architecture builds a Sequential"),
    ("resnet", {"method": "saliency"}, "unknown method 'saliency': expected one of"),
    ("fcnn", {"layer": "body.99"}, "FCNN has no layer 'body.99' for Grad-CAM; choose one of: body, body.0"),
    ("resnet", {"method": "gradcam", "layer": "low.3"}, "ResNet has no layer 'low.3'"),  # half the bands
    ("fsfcnn", {"layer": "head.maps.4.mlp.0"}, "FsFCNN has no layer"),  # not a feature map
    ("fcnn", {"method": "cam", "layer": "body.3"}, "a layer can be chosen for Grad-CAM only"),
    ("resnet", {"classes": 10}, "classes must be an int or one int per clip"),
    ("resnet", {"classes": [1, 2, 3]}, r"one int per clip \(2\)"),
])
def test_refusals_say_what_is_supported(name, options, message):
    model = nn.Sequential(nn.Conv2d(3, 10, 3)) if name == "plain" else _model(name)
    with pytest.raises(ValueError, match=message):
        cam.maps(model, torch.rand(2, 3, MELS, 118), **options)


def test_refuses_inputs_that_are_not_network_inputs():
    with pytest.raises(ValueError, match="expected network inputs"):
        cam.maps(_model("resnet"), np.zeros((2, MELS, 118)))


def test_cam_figure_stacks_a_spectrogram_and_one_panel_per_map():
    log_mel, result = np.random.default_rng(0).random((MELS, 118)), np.zeros((MELS, 118))
    figure = plots.cam_figure(log_mel, {"3 classes": result, "10 classes": result}, QUICK,
                              events=[(0.5, 1.5, "horn")], title="a clip")
    frame = QUICK.features.hop_length / QUICK.audio.sample_rate
    centred = (3.5 * frame, (3.5 + 118) * frame)  # input frame t is centred at (t + 4) frames, as in event_frames
    try:
        assert isinstance(figure, plt.Figure) and len(figure.axes) == 3
        assert all(axis.get_xlim() == pytest.approx(centred) for axis in figure.axes)  # one time axis, in clip time
        assert all(len(axis.patches) == 1 for axis in figure.axes)  # the event, on every panel
    finally:
        plt.close(figure)


# --- do the maps fall on the events? -----------------------------------------------------------

def test_event_frames_follow_the_frame_centres():
    """Quick profile: network-input frame t is centred at (t + 4) x 512 / 16000 s."""
    profile = get_profile("quick")
    events = pd.DataFrame({"onset": [0.5, 3.9], "offset": [1.0, 4.0]})
    inside = cam.event_frames(events, 118, profile)
    centres = (np.arange(118) + 4) * 512 / 16_000
    assert list(np.flatnonzero(inside)) == list(range(12, 28)) + list(np.flatnonzero(centres >= 3.9))
    assert not cam.event_frames(events.iloc[:0], 118, profile).any()


def test_figure_clips_take_the_largest_gain_of_each_scene_and_fall_back_on_small_data():
    truth = pd.DataFrame({"device": ["a", "a", "b", "a", "a"], "label": ["bus", "bus", "bus", "park", "tram"]},
                         index=[f"clip{k}" for k in range(5)])
    gain = pd.Series([0.1, 0.3, 0.9, 0.2, 0.5], index=truth.index)
    everything = pd.Series(True, index=truth.index)
    assert cam.figure_clips(gain, truth, ["bus", "park"], everything) == ["clip1", "clip3"]
    assert cam.figure_clips(gain, truth, ["bus"], everything.where(truth.index != "clip1", False)) == ["clip0"]
    # no device-A clip of the scene: the best unused device-A clip, then any clip
    assert cam.figure_clips(gain, truth, ["metro", "metro"], everything) == ["clip4", "clip1"]
    assert cam.figure_clips(gain, truth.assign(device="b"), ["metro", "metro"], everything) == ["clip2", "clip4"]


def test_mass_in_events_and_the_ratio_by_hand():
    masks = np.zeros((40, 10), dtype=bool)
    masks[:, :4] = True  # events cover 40 % of every clip
    uniform = np.ones((40, 3, 10), np.float32)
    on_events = uniform * masks[:, None, :]
    shares = cam.mass_in_events(uniform, masks)
    assert np.allclose(shares["mass in events"], 0.4) and np.allclose(shares["area of events"], 0.4)
    table = pd.concat([shares.assign(model="blind"), cam.mass_in_events(on_events, masks).assign(model="looks")])
    ratio = cam.attention_ratio(table, ["model"], n_resamples=200)
    assert ratio.loc["blind", "ratio"] == 1.0 and ratio.loc["looks", "ratio"] == 2.5
    assert ratio.loc["blind", "low"] == 1.0 and ratio.loc["looks", "clips"] == 40
    empty = cam.mass_in_events(np.zeros((2, 3, 10), np.float32), masks[:2])
    assert empty["mass in events"].isna().all()  # a map with no mass says nothing


def test_profile_agreement_separates_the_same_clip_from_others():
    rng = np.random.default_rng(0)
    maps = rng.uniform(size=(60, 4, 20)).astype(np.float32) ** 4
    agreement = cam.profile_agreement(maps, maps, n_resamples=200)
    assert agreement.loc["same clip", "mean correlation"] == 1.0
    assert agreement.loc["shuffled clips", "high"] < 0.5
    profiles = cam.time_profiles(maps)
    assert np.allclose(profiles.sum(axis=1), 1.0)
