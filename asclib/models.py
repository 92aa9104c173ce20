"""The paper's three CNNs (section 2.2; docs/spec.md section 4): ResNet, FCNN and fsFCNN (notebooks 04-06).

Each class, called as `Model(n_classes, width, n_mels)` (`architectures.build`, which also
initialises it), is a torch module that maps network inputs
(batch, 3, mel bands, frames) to class logits; softmax is applied outside. Keras conventions
that change the arithmetic are followed (docs/spec.md appendix A): BatchNorm with eps 1e-3 and
momentum 0.01 (Keras 0.99), non-affine BatchNorms where the reference has `learn_bn=False`, no
convolution biases, TensorFlow "same" padding (asymmetric for stride 2), average pooling that
excludes padded cells, he-normal (truncated, fan-in) initialisation. In the `paper` profile the
trainable parameter counts equal the reference's exactly (tests/test_models.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _bn(channels: int, affine: bool = True) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01, affine=affine)  # Keras: 0.99 kept


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding along one axis: (before, after) (the networks' layers; `cam` maps frames with it)."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], value: float = 0.0) -> torch.Tensor:
    top, bottom = same_padding(x.shape[-2], kernel[0], stride[0])
    left, right = same_padding(x.shape[-1], kernel[1], stride[1])
    return F.pad(x, (left, right, top, bottom), value=value)


class SameConv(nn.Conv2d):
    """Conv2d without bias and with TensorFlow "same" padding."""

    def __init__(self, inputs: int, outputs: int, kernel: int, stride=(1, 1)):
        super().__init__(inputs, outputs, kernel, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_pad_same(x, self.kernel_size, self.stride))


def same_max_pool(x: torch.Tensor, kernel: int, stride: tuple[int, int]) -> torch.Tensor:
    """Max pooling with TensorFlow "same" padding (padded cells never win)."""
    return F.max_pool2d(_pad_same(x, (kernel, kernel), stride, value=-math.inf), kernel, stride)


def same_avg_pool(x: torch.Tensor, kernel: int, stride: tuple[int, int]) -> torch.Tensor:
    """Average pooling with TensorFlow "same" padding: padded cells are left out of each mean."""
    total = F.avg_pool2d(_pad_same(x, (kernel, kernel), stride), kernel, stride)
    ones = torch.ones_like(x[:1, :1])
    count = F.avg_pool2d(_pad_same(ones, (kernel, kernel), stride), kernel, stride)
    return total / count


# --------------------------------------------------------------------------------------------
# ResNet: McDonnell and Gao's split-frequency pre-activation ResNet (docs/spec.md section 4.1)


class _Unit(nn.Sequential):
    """BN (optionally affine) -> ReLU (optional) -> conv k x k with TF "same" padding."""

    def __init__(self, inputs: int, outputs: int, kernel: int = 3, stride=(1, 1), affine=False, relu=True):
        layers = [_bn(inputs, affine)] + ([nn.ReLU()] if relu else []) + [SameConv(inputs, outputs, kernel, stride)]
        super().__init__(*layers)


class _ResidualBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, downsample: bool):
        super().__init__()
        stride = (1, 2) if downsample else (1, 1)
        self.first = _Unit(inputs, outputs, stride=stride)
        self.second = _Unit(outputs, outputs)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        if self.downsample:  # average-pool the time axis, then pad the channels with zeros
            shortcut = same_avg_pool(x, 3, (1, 2))
            shortcut = torch.cat([shortcut, torch.zeros_like(shortcut)], dim=1)
        return self.second(self.first(x)) + shortcut


class _ResNetPath(nn.Sequential):
    """One frequency half: stem, then 4 stacks of 2 residual blocks (time strided 3 times)."""

    def __init__(self, width: int):
        layers = [_Unit(3, width, stride=(1, 2), affine=True, relu=False)]
        channels = width
        for stack in range(4):
            for block in range(2):
                downsample = stack > 0 and block == 0
                outputs = channels * 2 if downsample else channels
                layers.append(_ResidualBlock(channels, outputs, downsample))
                channels = outputs
        super().__init__(*layers)
        self.channels = channels


class ResNet(nn.Module):
    """Two parallel paths over the lower and upper halves of the mel bands, never strided in
    frequency; their maps are joined along frequency and a 1x1-conv head gives class maps."""

    def __init__(self, n_classes: int, width: int, n_mels: int):
        super().__init__()
        if n_mels % 2:
            raise ValueError(f"the split-frequency ResNet needs an even number of mel bands, got {n_mels}")
        self.n_mels = n_mels
        self.low, self.high = _ResNetPath(width), _ResNetPath(width)
        channels = self.low.channels
        self.head = nn.Sequential(
            _bn(channels, False), nn.ReLU(), SameConv(channels, 4 * channels, 1),
            _bn(4 * channels, False), SameConv(4 * channels, n_classes, 1), _bn(n_classes, False),
        )

    def class_maps(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, classes, mel bands, frames / 16): the maps whose mean is the logits (CAM)."""
        half = self.n_mels // 2
        joined = torch.cat([self.low(x[:, :, :half]), self.high(x[:, :, half:])], dim=2)
        return self.head(joined)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.class_maps(check_inputs(x, self.n_mels)).mean(dim=(2, 3))


# --------------------------------------------------------------------------------------------
# FCNN and fsFCNN with channel attention (docs/spec.md section 4.2-4.4)


class PortableLinear(nn.Linear):
    """nn.Linear computed as a broadcast product and sum. On the CPU nn.Linear calls MKL, which
    picks its code path by the processor's vendor and ignores `asclib.kernels`' AVX2 cap: the
    same FCNN trained on an Intel and an AMD CPU drifted apart (issue 17). PyTorch's own
    kernels follow the cap on both. The attention's products are 10 x 5: the cost is nil."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.unsqueeze(-2) * self.weight).sum(dim=-1) + self.bias


class ChannelAttention(nn.Module):
    """CBAM-style channel attention on the class maps: a shared two-layer MLP over the global
    average and the global maximum, summed, through a sigmoid, scales each map."""

    def __init__(self, channels: int, ratio: int = 2):
        super().__init__()
        hidden = channels // ratio
        self.mlp = nn.Sequential(PortableLinear(channels, hidden), nn.ReLU(), PortableLinear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3))))
        return x * weights[:, :, None, None]


class PortableDropout(nn.Dropout):
    """Dropout whose masks every x86 CPU draws alike. torch's CPU dropout draws them with MKL's
    generator on Intel processors and with its own elsewhere (`bernoulli_` with a scalar
    probability checks the vendor), so the FCNNs, the networks with dropout, trained differently
    on Intel and AMD CPUs (issue 17). Here a clip's cell is kept where a uniform number of torch's
    own generator is at least p, the same numbers on every CPU."""

    def scaled_mask(self, shape: tuple, like: torch.Tensor) -> torch.Tensor:
        """1 / (1 - p) where kept, 0 where dropped, drawn for `shape`."""
        return torch.rand(shape, dtype=like.dtype, device=like.device).ge_(self.p).div_(1 - self.p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * self.scaled_mask(x.shape, x)


def _cbr(inputs: int, outputs: int, kernel: int, stride=(1, 1), same: bool = False, dropout: float = 0.0) -> list:
    """Conv -> BN (affine) -> ReLU (-> dropout): the FCNN building block."""
    conv = (SameConv(inputs, outputs, kernel, stride) if same
            else nn.Conv2d(inputs, outputs, kernel, stride, padding=kernel // 2, bias=False))
    return [conv, _bn(outputs), nn.ReLU()] + ([PortableDropout(dropout)] if dropout else [])


class SamePool(nn.Module):
    """TensorFlow's "same" 3x3 max pooling with `stride` as a layer (the FCNNs'; `cam` walks it)."""

    def __init__(self, stride: tuple[int, int]):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return same_max_pool(x, 3, self.stride)


class _AttentionHead(nn.Module):
    """1x1 conv to class maps -> BN -> ReLU -> BN -> channel attention; logits are their mean."""

    def __init__(self, channels: int, n_classes: int):
        super().__init__()
        self.maps = nn.Sequential(nn.Conv2d(channels, n_classes, 1, bias=False), _bn(n_classes, False),
                                  nn.ReLU(), _bn(n_classes, False), ChannelAttention(n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maps(x)


class FCNN(nn.Module):
    """VGG-like fully convolutional network: 8 conv layers in 3 blocks, 2x2 max pooling in time
    and frequency after each block, dropout 0.3, then the attention head (9 convs in all)."""

    def __init__(self, n_classes: int, filters: tuple[int, int, int], n_mels: int):
        super().__init__()
        self.n_mels = n_mels
        a, b, c = (3 * f for f in filters)  # each block multiplies its width by the 3 input channels
        self.body = nn.Sequential(
            _bn(3), *_cbr(3, a, 5, stride=(2, 2)), *_cbr(a, a, 3), nn.MaxPool2d(2),
            *_cbr(a, b, 3), *_cbr(b, b, 3), nn.MaxPool2d(2),
            *_cbr(b, c, 3, dropout=0.3), *_cbr(c, c, 3, dropout=0.3), *_cbr(c, c, 3, dropout=0.3),
            *_cbr(c, c, 3), nn.MaxPool2d(2),
        )
        self.head = _AttentionHead(c, n_classes)

    def class_maps(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.class_maps(check_inputs(x, self.n_mels)).mean(dim=(2, 3))


class FsFCNN(FCNN):
    """FCNN with frequency sub-sampling controlled: the first conv and the last two pools stride
    in time only (frequency reduced 4x instead of 16x), and two more convs (dropout 0.5)."""

    def __init__(self, n_classes: int, filters: tuple[int, int, int, int], n_mels: int):
        nn.Module.__init__(self)
        self.n_mels = n_mels
        a, b, c, d = filters
        self.body = nn.Sequential(
            _bn(3), *_cbr(3, a, 5, stride=(1, 2), same=True), *_cbr(a, a, 3, same=True), SamePool((2, 2)),
            *_cbr(a, b, 3, same=True), *_cbr(b, b, 3, same=True), SamePool((2, 2)),
            *_cbr(b, c, 3, same=True), *_cbr(c, c, 3, same=True), SamePool((1, 2)),
            *_cbr(c, c, 3, same=True), *_cbr(c, c, 3, same=True), SamePool((1, 2)),
            *_cbr(c, d, 3, same=True, dropout=0.5), *_cbr(d, d, 3, same=True, dropout=0.5),
        )
        self.head = _AttentionHead(d, n_classes)


def check_inputs(x: torch.Tensor, n_mels: int) -> torch.Tensor:
    """Refuse inputs that are not (batch, 3, n_mels, frames) with a message saying what is."""
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != n_mels or x.shape[3] < 16:
        raise ValueError(f"expected network inputs of shape (batch, 3, {n_mels}, frames >= 16) "
                         f"[static, delta, delta-delta x mel bands x frames], got {tuple(x.shape)}")
    return x


def initialise(model: nn.Module, bn_momentum: float) -> None:
    """Keras he_normal: truncated normal, std sqrt(2 / fan_in), cut at two std; zero biases; and
    the profile's BatchNorm momentum (`config.ModelConfig.bn_momentum`). `architectures.build`
    calls it on every new model."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            std = math.sqrt(2.0 / fan_in)
            nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = bn_momentum


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def layer_table(model: nn.Module, frames: int):
    """The model's main layers with their output shapes for one input of `frames` frames
    (a pandas DataFrame).

    ResNet rows describe one of the two frequency paths (the other is identical), then the head.
    """
    import pandas as pd

    kinds = (nn.Conv2d, nn.MaxPool2d, SamePool, _ResidualBlock, ChannelAttention, nn.Dropout)
    chosen = {}
    for name, module in model.named_modules():
        if name.startswith("high") or not isinstance(module, kinds):
            continue
        if any(name.startswith(parent + ".") for parent in chosen):
            continue
        chosen[name] = module
    rows, hooks = [], []
    for name, module in chosen.items():
        def record(module, inputs, output, name=name):
            params = sum(p.numel() for p in module.parameters())
            rows.append({"layer": name, "type": _describe(module), "output (C x F x T)": " x ".join(map(str, output.shape[1:])),
                         "parameters": params})
        hooks.append(module.register_forward_hook(record))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, model.n_mels, frames))
    model.train(was_training)
    for hook in hooks:
        hook.remove()
    return pd.DataFrame(rows).set_index("layer")


def _describe(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        return f"conv {module.kernel_size[0]}x{module.kernel_size[1]} stride {module.stride[0]}x{module.stride[1]}"
    if isinstance(module, _ResidualBlock):
        return "residual block" + (", time stride 2" if module.downsample else "")
    if isinstance(module, (nn.MaxPool2d, SamePool)):
        stride = module.stride if isinstance(module, SamePool) else (module.stride, module.stride)
        return f"max pool stride {stride[0]}x{stride[1]}"
    if isinstance(module, nn.Dropout):
        return f"dropout {module.p}"
    return type(module).__name__
