"""The same arithmetic on every x86-64 CPU with AVX2 (issue 17, item 3).

numpy, OpenBLAS, numba, PyTorch's ATen kernels, oneDNN (PyTorch's CPU convolutions) and MKL each
pick their code path by the processor they run on: AVX-512 on some CPUs, AVX2 on others. The
paths round differently in the last bit, and a short training turns such bits into points of
accuracy (an AMD EPYC with AVX-512 moved quick cells by up to 2.1 points and flipped 4 of 8
verdicts against the committed tables, made on one without it). Capping every library at AVX2
made the same AVX-512 machine reproduce the committed predictions to the last stored digit
(docs/performance.md, "How far results move between machines"; `benchmarks/cpu_agreement.py`).
MKL also picks its path by the processor's vendor, past its cap, and torch's CPU dropout uses
MKL's generator on Intel processors only, so no network calls MKL or torch's dropout
(`models.PortableLinear`, `models.PortableDropout`; tests/test_kernels.py).

Each library reads its variable when it loads, so `asclib/__init__.py` calls `pin()` before
anything imports numpy or torch; processes started later (training workers, notebook kernels)
inherit the variables. A variable already set is left as it is, `ASC_NATIVE_KERNELS=1` turns the
caps off (each library on its fastest path, results no longer portable), and a CPU without AVX2
(or one whose flags cannot be read, as outside Linux) gets no caps. `settings()` is part of every
training run's key (`train.run_folder`) and of the manifest.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import MutableMapping
from pathlib import Path

# The variable each library reads, and the value that keeps it on its AVX2 code path.
AVX2_CAPS = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # numpy's AVX-512 ufunc loops
    "OPENBLAS_CORETYPE": "Haswell",  # numpy's and scipy's OpenBLAS kernels
    "NUMBA_CPU_NAME": "haswell",  # the compander's compiled loop (asclib.compand)
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's vectorised ATen kernels
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN's convolutions
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",  # MKL's matrix products
}
OPT_OUT = "ASC_NATIVE_KERNELS"
# What a CPU needs for the AVX2 paths above (the Haswell generation's instructions).
NEEDED_FLAGS = {"avx2", "fma", "bmi2", "f16c"}


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The instruction-set flags of the first CPU in `cpuinfo`; empty where it cannot be read."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return set()
    return next((set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set())


def pin(environ: MutableMapping[str, str] = os.environ, flags: set[str] | None = None) -> None:
    """Set every variable of `AVX2_CAPS` that is not set yet, unless `OPT_OUT` is 1 or the CPU
    lacks AVX2. Warns when numpy or torch was imported first: their paths are then chosen."""
    if environ.get(OPT_OUT) == "1" or not NEEDED_FLAGS <= (cpu_flags() if flags is None else flags):
        return
    missing = {name: value for name, value in AVX2_CAPS.items() if name not in environ}
    loaded = [module for module in ("numpy", "torch") if module in sys.modules]
    if missing and loaded and environ is os.environ:
        warnings.warn(f"{' and '.join(loaded)} imported before asclib: their CPU code paths are already "
                      "chosen, so results may differ from the committed ones; import asclib first",
                      stacklevel=3)
    environ.update(missing)


def settings(environ: MutableMapping[str, str] = os.environ) -> dict[str, str | None]:
    """The value of every variable of `AVX2_CAPS` in effect (None where unset)."""
    return {name: environ.get(name) for name in AVX2_CAPS}
