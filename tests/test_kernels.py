"""asclib.kernels: importing asclib caps every numerical library at its AVX2 code path, so that
x86-64 CPUs train the same bits (issue 17, item 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from torch import nn

from asclib import architectures, kernels, models, train
from asclib.config import PROJECT_ROOT
from asclib.profiles import get_profile

HASWELL = {"avx2", "fma", "bmi2", "f16c", "avx512f"}


# What must be capped, stated apart from `kernels.AVX2_CAPS`: every library that picks its code
# path by the CPU, and the value that keeps it on AVX2 (the module docstring says why each).
EXPECTED_CAPS = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # numpy
    "OPENBLAS_CORETYPE": "Haswell",  # OpenBLAS
    "NUMBA_CPU_NAME": "haswell",  # numba (asclib.compand)
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's ATen
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",  # MKL
}


def test_pin_sets_every_cap_on_an_avx2_cpu():
    """Every library is capped, at the value that keeps it on AVX2 (a cap dropped or changed in
    `kernels.AVX2_CAPS` fails here, not only in a run key)."""
    environ = {}
    kernels.pin(environ, HASWELL)
    assert environ == EXPECTED_CAPS
    assert kernels.settings(environ) == EXPECTED_CAPS


def test_pin_keeps_what_the_user_set():
    environ = {"ATEN_CPU_CAPABILITY": "default"}
    kernels.pin(environ, HASWELL)
    assert environ["ATEN_CPU_CAPABILITY"] == "default"
    assert environ["ONEDNN_MAX_CPU_ISA"] == "AVX2"


@pytest.mark.parametrize("environ, flags", [({kernels.OPT_OUT: "1"}, HASWELL),  # opted out
                                            ({}, {"sse4_2", "avx"}),  # no AVX2: the caps would fault
                                            ({}, set())])  # flags unreadable (not Linux)
def test_pin_leaves_the_libraries_alone(environ, flags):
    before = dict(environ)
    kernels.pin(environ, flags)
    assert environ == before


def test_cpu_flags_reads_the_first_cpu(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert kernels.cpu_flags(cpuinfo) == {"fpu", "avx2", "fma"}
    assert kernels.cpu_flags(tmp_path / "absent") == set()


def _libraries_in_a_fresh_process(environ: dict) -> dict:
    """The code paths numpy and torch chose, and the CPU numba compiles for, in a new interpreter
    that imports asclib first."""
    probe = ("import asclib, json, numba, numpy, torch\n"
             "from numpy._core._multiarray_umath import __cpu_features__ as f\n"
             "print(json.dumps({'torch': torch.backends.cpu.get_cpu_capability(), 'numpy_avx512': f['X86_V4'],\n"
             "                  'numba': numba.config.CPU_NAME}))")
    done = subprocess.run([sys.executable, "-c", probe], env=environ, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_importing_asclib_caps_numpy_and_torch_at_avx2():
    if not kernels.NEEDED_FLAGS <= kernels.cpu_flags():
        pytest.skip("this CPU has no AVX2: asclib leaves its libraries alone")
    clean = {name: value for name, value in os.environ.items() if name not in kernels.AVX2_CAPS}
    assert _libraries_in_a_fresh_process(clean) == {"torch": "AVX2", "numpy_avx512": False, "numba": "haswell"}
    if "avx512f" in kernels.cpu_flags():  # only here can the opt-out show the native paths
        native = _libraries_in_a_fresh_process({**clean, kernels.OPT_OUT: "1"})
        assert native == {"torch": "AVX512", "numpy_avx512": True, "numba": None}


def test_the_caps_are_part_of_every_run_key(monkeypatch):
    """A run trained on other code paths is never reused as if it were capped."""
    profile = get_profile("quick")
    data = train.TrainingSet(np.zeros((0, 1, 1), np.float32), np.zeros(0, np.int64), "clips")
    capped = train.run_folder("fcnn", 10, profile, 0, data)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    assert train.run_folder("fcnn", 10, profile, 0, data) != capped


# As training and evaluation run: one thread (`train.TRAIN_THREADS`), a training batch of the
# profile's size, and evaluation through `evaluation.probabilities_of` on a short batch (4 clips,
# which torch alone would hand to MKL with one thread).
MKL_CALLS = """
import torch
from asclib import architectures, evaluation, profiles, train
torch.set_num_threads(train.TRAIN_THREADS)
profile = profiles.get_profile("quick")
for name in architectures.REGISTRY:
    for n_classes in architectures.CLASS_COUNTS:
        model = architectures.build(name, n_classes, profile)
        x = torch.randn(profile.train.batch_size, 3, profile.features.n_mels, profile.augment.crop_frames)
        model(x).logsumexp(1).mean().backward()
        model.eval()
        evaluation.probabilities_of(model, torch.randn(4, 3, profile.features.n_mels, 64))
print("trained and evaluated every architecture")
"""


def test_no_network_calls_mkl():
    """MKL picks its code path by the CPU's vendor, past the AVX2 cap: a network that reached it
    (nn.Linear did, in the FCNNs' attention) trained differently on Intel and AMD processors.
    MKL_VERBOSE makes MKL print a line for every call it serves."""
    done = subprocess.run([sys.executable, "-c", MKL_CALLS], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env={**os.environ, "MKL_VERBOSE": "1"}, check=True)
    assert "trained and evaluated every architecture" in done.stdout
    calls = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("MKL_VERBOSE")]
    assert calls == []


def test_no_network_uses_torch_dropout():
    """torch's CPU dropout draws its masks with MKL's generator on Intel processors only (a
    vendor check in `bernoulli_`), past every cap: every dropout is `models.PortableDropout`."""
    profile = get_profile("quick")
    for name in architectures.REGISTRY:
        for n_classes in architectures.CLASS_COUNTS:
            model = architectures.build(name, n_classes, profile)
            dropouts = [type(module) for module in model.modules() if isinstance(module, nn.Dropout)]
            assert all(kind is models.PortableDropout for kind in dropouts), (name, n_classes, dropouts)
    assert any(isinstance(module, models.PortableDropout)
               for module in architectures.build("fcnn", 10, profile).modules())
