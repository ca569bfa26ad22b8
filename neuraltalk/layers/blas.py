"""One BLAS thread for the recurrences' per-step products.

A recurrence multiplies small matrices one step after another (a step of an LSTM-256 on a
batch of 100 is a (100, 256) x (256, 1024) product, ~0.1 ms of work). With OpenBLAS's
threads each such product hands half of itself to another thread and waits for it: when
that thread is not running at once (any other load on the machine) the wait costs far
more than the product. Measured on the shared 2-core machine of bench/train_speed.py:
a (100, 256) x (256, 256) product took 31 ms with 2 threads and 1.4 ms with one. So the
loops over time steps run their products on one thread (`one_thread()`), and the
time-distributed products around them (inputs, decoder, weight gradients: large, one call
each) keep the process's thread count.

numpy's OpenBLAS is found among the loaded libraries (/proc/self/maps) and called through
ctypes, as threadpoolctl does; without it (another BLAS, another OS) `one_thread()` does
nothing, and only speed differs. The thread count is process-wide: a thread decoding
while another trains shares it (results are the same either way).
"""
import contextlib
import ctypes
import os
import threading

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
            "openblas_get_num_threads64_", "openblas_get_num_threads")
_lock = threading.Lock()
_state = {"found": None, "depth": 0, "saved": None}


def _openblas():
    """(set, get) of the loaded OpenBLAS, or None."""
    if _state["found"] is None:
        _state["found"] = False
        lib = _library()
        if lib is not None:
            setter = next(getattr(lib, n) for n in _SETTERS if hasattr(lib, n))
            getter = next(getattr(lib, n) for n in _GETTERS if hasattr(lib, n))
            setter.argtypes, setter.restype = [ctypes.c_int], None
            getter.argtypes, getter.restype = [], ctypes.c_int
            _state["found"] = (setter, getter)
    return _state["found"] or None


def _library():
    """numpy's OpenBLAS (the loaded library with a thread-count setter and getter), or None."""
    try:
        __import__("numpy")  # loads its BLAS
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f
                            if "openblas" in line.lower() and "/" in line})
        for path in paths:
            lib = ctypes.CDLL(path)
            if any(hasattr(lib, n) for n in _SETTERS) and any(hasattr(lib, n) for n in _GETTERS):
                return lib
    except (OSError, ValueError, AttributeError):
        pass
    return None


def reread_environment():
    """Make an OpenBLAS loaded before OPENBLAS_THREAD_TIMEOUT was set take it: reread its
    environment and stop its threads (they restart, with the new timeout, at the next
    threaded call). Only while no BLAS call runs. True when done."""
    lib = _library()
    if lib is None or not all(hasattr(lib, n) for n in ("openblas_read_env",
                                                        "blas_thread_shutdown_")):
        return False
    lib.openblas_read_env.argtypes, lib.openblas_read_env.restype = [], None
    lib.blas_thread_shutdown_.argtypes, lib.blas_thread_shutdown_.restype = [], ctypes.c_int
    with _lock:
        lib.openblas_read_env()
        lib.blas_thread_shutdown_()
    return True


def threads():
    """OpenBLAS's thread count now (outside one_thread blocks: the process's); 1 when
    numpy's BLAS is not a known OpenBLAS."""
    blas = _openblas()
    with _lock:
        if blas is None:
            return 1
        return _state["saved"] if _state["depth"] else blas[1]()


@contextlib.contextmanager
def one_thread():
    """Run the block's BLAS calls on one thread; the count before is restored after
    (nested blocks and concurrent Python threads restore it once, at the last exit)."""
    blas = _openblas()
    if blas is None:
        yield
        return
    setter, getter = blas
    with _lock:
        if _state["depth"] == 0:
            _state["saved"] = getter()
            if _state["saved"] > 1:
                setter(1)
        _state["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["depth"] -= 1
            if _state["depth"] == 0 and _state["saved"] > 1:
                setter(_state["saved"])


def in_row_chunks(fn, n_rows, min_rows=64):
    """fn(rows) for row slices that cover range(n_rows), run on as many Python threads as
    BLAS threads: numpy releases the GIL in its elementwise loops, which otherwise use one
    core while BLAS uses them all. For work whose rows are independent (a row's result
    does not depend on the chunking, so it is exactly what fn(slice(0, n_rows)) gives)."""
    parts = max(1, min(threads(), n_rows // min_rows) if n_rows >= 2 * min_rows else 1)
    bounds = [n_rows * i // parts for i in range(parts + 1)]
    in_threads(fn, [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])])


_worker = threading.local()


def in_threads(fn, items, min_items=2):
    """fn(item) for every item, on as many Python threads as BLAS threads, each thread
    taking the next item when it is done with one and running its BLAS calls on one
    thread: for independent pieces of work (chunks of a convolution) whose copies and
    elementwise loops would otherwise use one core while BLAS uses them all. Fewer than
    `min_items` items, or a call from inside another in_threads, run here with the
    process's BLAS threads: each elementwise call hands the GIL from thread to thread,
    which costs more than small calls save (nine products and sums of 47 K numbers each:
    0.35 ms on one thread, 1.5 ms on two)."""
    items = list(items)
    parts = min(threads(), len(items))
    if parts <= 1 or len(items) < min_items or getattr(_worker, "active", False):
        for item in items:
            fn(item)
        return
    with one_thread():
        _crew(parts).run(fn, items)


def in_sequence_groups(fn, counts, min_rows=16):
    """fn(lo, hi) for groups of the sequences of a packed batch with `counts` rows per
    step (see packed.py), covering sequences 0..counts[0]-1, with one BLAS thread:
    a recurrence's sequences are independent of one another, so each group runs its whole
    loop over time on its own Python thread (as many as BLAS threads), with rows split so
    that the groups have about as many rows each. A group's products and elementwise work
    are those of its rows alone, so the results are those of one group of all."""
    import numpy as np
    B = int(counts[0]) if len(counts) else 0
    with one_thread():
        parts = min(threads(), B // min_rows)  # the count outside this block
        if parts <= 1:
            fn(0, B)
            return
        # rows of sequence j = its steps = #(counts > j); the longest sequences come first
        steps = (np.asarray(counts)[None, :] > np.arange(B)[:, None]).sum(1)
        cum = np.cumsum(steps)
        bounds = [0] + [int(np.searchsorted(cum, cum[-1] * i / parts)) + 1
                        for i in range(1, parts)] + [B]
        bounds = sorted(set(min(max(b, 0), B) for b in bounds))
        _crew(len(bounds) - 1).run(lambda group: fn(*group), zip(bounds[:-1], bounds[1:]))


class _Crew:
    """Threads that each wait on a lock of their own to take items of the work of the
    moment, with the calling thread taking its share: a round trip through a ThreadPoolExecutor
    (submit, wake, future, result) took 170 us on this 2-core VM, a lock handed to a
    waiting thread 19 us. EfficientNet-Lite0 at batch 1 makes about 50 such calls an
    image; the softmax, regularization and solver make several every training step. A
    caller that finds the crew busy (another Python thread using it) runs its task alone."""

    def __init__(self, helpers):
        self.busy = threading.Lock()
        self.task, self.errors = None, []
        self.go = [threading.Lock() for _ in range(helpers)]
        self.done = [threading.Lock() for _ in range(helpers)]
        for go, done in zip(self.go, self.done):
            go.acquire()
            done.acquire()
            threading.Thread(target=self._serve, args=(go, done), daemon=True,
                             name="neuraltalk-crew").start()

    def _serve(self, go, done):
        while True:
            go.acquire()
            try:
                self.task()
            except BaseException as e:  # handed to the caller
                self.errors.append(e)
            finally:
                done.release()

    def run(self, fn, items):
        """fn(item) for every item, each helper and this thread taking the next item when
        done with one (calls inside fn to in_threads run where they are); returns when
        all are done, raising the first error any of them raised."""
        pending, taking = iter(items), threading.Lock()

        def task():
            nested, _worker.active = getattr(_worker, "active", False), True
            try:
                while True:
                    with taking:
                        item = next(pending, pending)
                    if item is pending:
                        return
                    fn(item)
            finally:
                _worker.active = nested
        if not self.busy.acquire(blocking=False):
            task()
            return
        try:
            self.task, self.errors = task, []
            for go in self.go:
                go.release()
            try:
                task()
            finally:
                self._wait()
            if self.errors:
                raise self.errors[0]
        finally:
            self.busy.release()


    def _wait(self):
        """Every helper done with the task, even through a Ctrl-C meanwhile (raised
        after): a helper left running would take the next task's share as its own."""
        interrupted = None
        for done in self.done:
            while True:
                try:
                    done.acquire()
                    break
                except BaseException as e:  # KeyboardInterrupt while waiting
                    interrupted = e
        self.task = None
        if interrupted is not None:
            raise interrupted


_crews = {}


def _crew(parts):
    """The crew of parts - 1 helpers (made on first use, kept for the process)."""
    with _lock:
        crew = _crews.get(parts)
        if crew is None:
            crew = _crews[parts] = _Crew(parts - 1)
    return crew


def _forget_crews():  # a forked child has none of its parent's threads
    global _lock
    _crews.clear()
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_crews)
