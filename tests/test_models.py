"""The three CNNs: exact parameter counts, shapes, Keras conventions, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from asclib import architectures, models
from asclib.profiles import get_profile

from conftest import PAPER, QUICK

PAPER_COUNTS = {("resnet", 10): 12_966_444, ("resnet", 3): 3_240_732, ("fcnn", 10): 11_780_329,
                ("fcnn", 3): 11_776_192, ("fsfcnn", 10): 16_531_913}


def test_the_code_counts_the_library_shows_are_the_reference_counts():
    from asclib import paper

    assert paper.CODE_PARAMETERS == PAPER_COUNTS  # the complexity table's reference column (asclib.complexity)


@pytest.mark.parametrize("name, classes", PAPER_COUNTS)
def test_paper_parameter_counts_equal_the_reference(name, classes):
    assert models.count_parameters(architectures.build(name, classes, PAPER)) == PAPER_COUNTS[(name, classes)]


# The quick networks of the committed results (notebooks 04-06 print these counts)
QUICK_COUNTS = {("resnet", 10): 91_428, ("resnet", 3): 22_792, ("fcnn", 10): 83_677, ("fcnn", 3): 83_236,
                ("fsfcnn", 10): 66_917}


def test_quick_parameter_counts_are_the_committed_results():
    assert {key: models.count_parameters(architectures.build(*key, QUICK)) for key in QUICK_COUNTS} == QUICK_COUNTS


@pytest.mark.parametrize("name, classes, maps", [("resnet", 10, (128, 27)), ("fcnn", 3, (8, 26)), ("fsfcnn", 10, (32, 14))])
def test_paper_class_maps_have_the_reference_shapes(name, classes, maps):
    model = architectures.build(name, classes, PAPER).eval()
    with torch.no_grad():
        x = torch.rand(1, 3, 128, 423)
        assert tuple(model.class_maps(x).shape) == (1, classes, *maps)
        logits = model(x)
    assert logits.shape == (1, classes) and not torch.allclose(logits.sum(), torch.tensor(1.0))


@pytest.mark.parametrize("name", architectures.REGISTRY)
def test_quick_models_run_on_quick_inputs(name):
    model = architectures.build(name, 10, QUICK)
    out = model(torch.rand(4, 3, get_profile("quick").features.n_mels, 112))
    assert out.shape == (4, 10)
    out.sum().backward()


def test_keras_conventions():
    model = architectures.build("resnet", 10, PAPER)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.eps == 1e-3 and m.momentum == 0.01 for m in norms)
    assert sum(m.affine for m in norms) == 2  # only the two stems' input BatchNorms learn
    assert all(m.bias is None for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    fcnn = architectures.build("fcnn", 10, PAPER)
    assert sum(not m.affine for m in fcnn.modules() if isinstance(m, torch.nn.BatchNorm2d)) == 2


def test_tensorflow_same_padding_and_pooling():
    conv = models.SameConv(1, 1, 3, stride=(1, 2))
    for frames in (400, 423):
        assert conv(torch.zeros(1, 1, 8, frames)).shape[-1] == math.ceil(frames / 2)
    pooled = models.same_avg_pool(torch.ones(1, 2, 6, 9), 3, (1, 2))
    assert torch.allclose(pooled, torch.ones_like(pooled))  # padding is not averaged in
    x = -torch.ones(1, 1, 4, 4)
    assert models.same_max_pool(x, 3, (2, 2)).max() == -1  # padding never wins


def test_he_normal_initialisation():
    layer = architectures.build("fcnn", 10, PAPER).body[-4]  # the last 576 x 576 x 3 x 3 convolution
    assert isinstance(layer, torch.nn.Conv2d)
    sigma = math.sqrt(2 / layer.weight[0].numel())
    assert layer.weight.abs().max() <= 2 * sigma + 1e-6
    assert 0.84 < layer.weight.std().item() / sigma < 0.92  # a normal cut at 2 sigma keeps 0.88 of sigma


def test_bad_requests_are_refused_clearly():
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        architectures.build("vgg", 10, QUICK)
    with pytest.raises(ValueError, match="unsupported class count 5"):
        architectures.build("fcnn", 5, QUICK)
    model = architectures.build("fcnn", 10, QUICK)
    with pytest.raises(ValueError, match=r"expected network inputs of shape \(batch, 3, 40, frames >= 16\).*got \(2, 1, 40, 100\)"):
        model(torch.zeros(2, 1, 40, 100))
    with pytest.raises(ValueError, match=r"got \(2, 3, 128, 100\)"):
        architectures.build("resnet", 10, QUICK)(torch.zeros(2, 3, 128, 100))


def test_portable_linear_computes_what_nn_linear_does():
    """The attention's linear layers avoid MKL (tests/test_kernels.py) without changing the maths."""
    torch.manual_seed(0)
    reference, portable = nn.Linear(10, 5), models.PortableLinear(10, 5)
    portable.load_state_dict(reference.state_dict())
    inputs = torch.randn(8, 10, requires_grad=True)
    expected, = torch.autograd.grad(reference(inputs).square().sum(), inputs)
    got, = torch.autograd.grad(portable(inputs).square().sum(), inputs)
    assert torch.allclose(portable(inputs), reference(inputs), atol=1e-6)
    assert torch.allclose(got, expected, atol=1e-5)


def test_portable_dropout_keeps_cells_where_torch_uniform_numbers_reach_p():
    dropout = models.PortableDropout(0.3)
    x = torch.ones(4000)
    torch.manual_seed(1)
    kept = dropout(x)
    torch.manual_seed(1)
    expected = (torch.rand(4000) >= 0.3).float() / 0.7
    assert torch.equal(kept, expected)
    assert abs((kept > 0).float().mean().item() - 0.7) < 0.03
    assert torch.equal(dropout.eval()(x), x)
