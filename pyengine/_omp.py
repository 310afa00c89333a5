"""OpenMP settings for our kernels, applied before the C++ extension loads.

Threads sleep at barriers instead of spinning (a value the user sets wins). The engine
reads the next block on a thread of its own while the kernels run: a kernel thread
preempted by it leaves the others spinning at the barrier. Measured streaming a 4.3 GB
file on 2 cores: 1.5 CPU-s less and wall 2.4 s instead of 3.0; in-memory kernels unchanged.

In a process forked after the extension was loaded (``multiprocessing`` with "fork", the
default on Linux before Python 3.14), the kernels run one thread: GNU OpenMP cannot start
a team in a child forked after its parent ran one, and the child's first parallel kernel
would wait forever (tests/test_pipeline.py).
"""

import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _one_thread_in_forked_child() -> None:
    if "pyengine._core" in sys.modules:
        from pyengine import config

        config.THREADS = 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_one_thread_in_forked_child)
