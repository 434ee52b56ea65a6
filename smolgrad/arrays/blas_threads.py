"""BLAS threads only for products big enough to profit from them (NumPy backend).

Why
---
NumPy hands every matrix product to a BLAS library (OpenBLAS in the NumPy wheels), which
splits a product into one equal chunk per thread and waits for the slowest chunk. When
another process keeps one core busy, the thread that shares that core runs only part of
the time, and the whole product waits for it: on a 2-core machine with one core busy we
measured a (32 x 144) @ (144 x 7744) product (36 M multiply-adds) take 24 ms with two
threads against 0.56 ms with one, and a 1024³ product 48 ms against 18 ms. On an idle
machine two threads save about 40% of a product of this size, a fraction of a millisecond.

The rule
--------
A product of per-matrix work M·K·N multiply-adds runs on at most

    threads = max(1, M·K·N // WORK_PER_THREAD)        (never above the current setting)

threads, WORK_PER_THREAD = 2**27 (about 1.5 ms of one core's work): every thread gets a
chunk long enough that a late start or a descheduled moment costs it little. OpenBLAS
itself already runs products under 2**18 multiply-adds on one thread, so those are passed
through untouched (no cost on tiny products). The thread count is set through
`threadpoolctl` (an optional, well-kept library: `pip install threadpoolctl`, part of the
`blas` extra) around the product and restored after it; without threadpoolctl products run
as NumPy runs them (set OPENBLAS_NUM_THREADS=1 for the same robustness under load).

The thread count of a BLAS library is process-wide: two Python threads multiplying at the
same moment may see each other's setting for the length of one product.
"""

from __future__ import annotations

WORK_PER_THREAD = 2**27     # multiply-adds each BLAS thread must get to be worth starting
BLAS_OWN_SINGLE = 2**18     # below this OpenBLAS uses one thread on its own


def product_work(a, b) -> int:
    """Multiply-adds of one matrix of the product a @ b (M·K·N; vectors count as 1 x K)."""
    m = a.shape[-2] if a.ndim > 1 else 1
    n = b.shape[-1] if b.ndim > 1 else 1
    return m * a.shape[-1] * n


class ThreadLimitedMatmul:
    """A matmul (NumPy's, given) that runs each product on as many BLAS threads as its size
    earns (the rule in the module docstring). Called like np.matmul(a, b)."""

    def __init__(self, matmul):
        self._matmul = matmul
        self._blas = None          # threadpoolctl controllers of the loaded BLAS libraries
        self._looked = False       # looked for them yet (done lazily: importing costs ms)

    def __call__(self, a, b):
        work = product_work(a, b) if a.ndim and b.ndim else 0
        if work < BLAS_OWN_SINGLE:
            return self._matmul(a, b)
        blas = self._controllers()
        if not blas:
            return self._matmul(a, b)
        wanted = max(1, work // WORK_PER_THREAD)
        previous = [lib.get_num_threads() for lib in blas]
        changed = [(lib, n) for lib, n in zip(blas, previous) if n is not None and n > wanted]
        for lib, _ in changed:
            lib.set_num_threads(wanted)
        try:
            return self._matmul(a, b)
        finally:
            for lib, n in changed:
                lib.set_num_threads(n)

    def _controllers(self) -> list:
        if not self._looked:
            self._looked = True
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                return []
            self._blas = ThreadpoolController().select(user_api="blas").lib_controllers
        return self._blas or []
