"""asclib: the library behind the notebooks (README, "Where things live").

Importing it first caps every numerical library at its AVX2 code path (`asclib.kernels`), so
that x86-64 CPUs compute the same bits; this must happen before numpy or torch is imported.
"""

from asclib import kernels

kernels.pin()
