"""A CPU-vendor guard (issue 30, item 4): a tiny ResNet and a tiny FCNN trained for a few steps
(tests/vendor_probe.py) end with the same bits natively and under qemu-x86_64 emulating an x86
processor of the other vendor without AVX-512.

On an Intel host the emulated CPU is an AMD EPYC-Rome (AVX2, no AVX-512), on any other an Intel
Haswell (`Haswell-noTSX`); `ASC_QEMU_CPU` names another model. So one qemu process varies both
things that moved results between machines (issue 17): the processor's vendor (MKL picks its
code path by it, past its AVX2 cap) and, where the host has AVX-512, the instruction set
(`asclib.kernels` caps every library at AVX2). An emulated Intel CPU on an Intel host would miss
the first: with one thread, a batch of 4 clips sends the 1x1 convolutions to MKL's sgemm, and
the weights then differ under EPYC-Rome but not under Haswell-noTSX. The probe also runs with
MKL_VERBOSE, and no MKL call may appear, whatever the host: a network that reaches MKL is not
portable even where both processes happen to be of one vendor.

Skipped when qemu-x86_64 (Debian's qemu-user, 7.2 or later: QEMU emulates AVX2 from 7.2) is
missing or too old, unless ASC_REQUIRE_QEMU is set (`.ci/run` sets it: see conftest.skip_or_fail);
skipped always on a host that is not x86-64 with AVX2, where there are no capped paths to compare.
About a minute: most of it is qemu importing torch and emulating AVX2.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asclib import kernels
from asclib.config import PROJECT_ROOT
from conftest import skip_or_fail

PROBE = Path(__file__).with_name("vendor_probe.py")
REQUIRE = "ASC_REQUIRE_QEMU"
TIMEOUT = 900  # seconds for each process: the emulated one takes about a minute on an idle core


def host_vendor(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The vendor of the first CPU in `cpuinfo` ("GenuineIntel", "AuthenticAMD"), "" if unknown."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return ""
    found = re.search(r"^vendor_id\s*:\s*(\S+)", text, re.MULTILINE)
    return found.group(1) if found else ""


def emulated_cpu(vendor: str) -> str:
    """qemu's model of an AVX2 processor without AVX-512 from a vendor other than `vendor`."""
    return os.environ.get("ASC_QEMU_CPU") or ("EPYC-Rome" if vendor == "GenuineIntel" else "Haswell-noTSX")


def qemu_version(qemu: str) -> tuple[int, ...]:
    shown = subprocess.run([qemu, "--version"], capture_output=True, text=True).stdout
    found = re.search(r"version (\d+)\.(\d+)", shown)
    return tuple(map(int, found.groups())) if found else ()


def _environment() -> dict[str, str]:
    """This environment without the caps and the opt-out, so that each process's `import asclib`
    chooses its own (`kernels.pin`), with MKL_VERBOSE on and this checkout's asclib first."""
    environ = {name: value for name, value in os.environ.items()
               if name not in kernels.AVX2_CAPS and name != kernels.OPT_OUT}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), environ.get("PYTHONPATH")]))
    environ["MKL_VERBOSE"] = "1"
    return environ


def _start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=PROJECT_ROOT, env=_environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _result(process: subprocess.Popen, what: str) -> dict:
    """The probe's JSON line, with the MKL calls it printed (under "mkl")."""
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"the {what} probe did not finish in {TIMEOUT} s")
    assert process.returncode == 0, f"the {what} probe failed ({process.returncode}):\n{err[-3000:]}"
    lines = out.strip().splitlines()
    result = json.loads(lines[-1])
    result["mkl"] = [line for line in lines if line.startswith("MKL_VERBOSE")]
    return result


def test_training_is_the_same_bits_on_an_emulated_cpu_of_the_other_vendor():
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip(f"the vendor guard compares x86-64 code paths; this host is {platform.machine()}")
    if not kernels.NEEDED_FLAGS <= kernels.cpu_flags():
        pytest.skip("this CPU has no AVX2: asclib leaves its libraries alone, there are no capped paths to compare")
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        skip_or_fail("qemu-x86_64 is not installed (apt-get install qemu-user; .ci/run installs it)", REQUIRE)
    if qemu_version(qemu) < (7, 2):
        skip_or_fail(f"{qemu} is older than QEMU 7.2, the first to emulate AVX2", REQUIRE)
    vendor = host_vendor()
    cpu = emulated_cpu(vendor)
    # The emulated process first: it takes the longest, and the native one runs beside it.
    emulated = _start([qemu, "-cpu", cpu, sys.executable, str(PROBE)])
    native = _start([sys.executable, str(PROBE)])
    native, emulated = _result(native, "native"), _result(emulated, f"qemu -cpu {cpu}")
    assert emulated["avx2"] and not emulated["avx512"], f"qemu -cpu {cpu} did not present an AVX2 CPU without AVX-512"
    assert emulated["cpu"] != native["cpu"], f"qemu -cpu {cpu} presented this CPU ({native['cpu']}), not another"
    for where, result in (("natively", native), (f"under qemu -cpu {cpu}", emulated)):
        assert result["mkl"] == [], (f"the networks called MKL {where}, whose code path depends on the CPU's "
                                     f"vendor: {result['mkl'][:3]}")
    assert native["hashes"] == emulated["hashes"], (
        f"training ended with other weights on this {vendor or 'unknown-vendor'} CPU ({native['cpu']}, "
        f"{native['capability']} paths) than on qemu's {cpu} ({emulated['cpu']}, {emulated['capability']} paths): "
        f"{native['hashes']} != {emulated['hashes']}. A library took a path of its own on one of them "
        "(asclib/kernels.py lists the caps).")


def test_the_emulated_cpu_is_of_the_other_vendor(monkeypatch):
    monkeypatch.delenv("ASC_QEMU_CPU", raising=False)
    assert emulated_cpu("GenuineIntel") == "EPYC-Rome"
    assert emulated_cpu("AuthenticAMD") == emulated_cpu("") == "Haswell-noTSX"
    monkeypatch.setenv("ASC_QEMU_CPU", "Skylake-Client")
    assert emulated_cpu("GenuineIntel") == "Skylake-Client"


def test_host_vendor_reads_the_first_cpu(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\n")
    assert host_vendor(cpuinfo) == "AuthenticAMD"
    assert host_vendor(tmp_path / "absent") == ""
