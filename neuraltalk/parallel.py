"""One process, or many started by `mpirun` / `srun`: the ranks of the job.

Every command asks `world()` which rank it is. A command started without an MPI launcher
(or where mpi4py is not installed: it is the optional `[mpi]` extra) gets a one-rank
world whose collectives are the identity, so the single-process code path is the only one.
mpi4py is imported only when a launcher started the process: importing it initialises
MPI, which outside a launcher costs time and may print warnings.

Open MPI's `mpirun` ends every rank when one exits with an error, so a rank that dies
ends the job; the files each command writes are replaced atomically (neuraltalk.atomic),
so what was on disk before stays whole.
"""
import os

import numpy as np

from neuraltalk.errors import NeuralTalkError

# set in every rank's environment by the launchers this project documents
# (Open MPI's mpirun, PMIx-based srun, MPICH/Hydra's PMI)
LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE")

_world = None


class World:
    """The ranks of this job. `comm` is mpi4py's COMM_WORLD, or None for one process."""

    def __init__(self, comm=None):
        self.comm = comm
        self.rank = comm.Get_rank() if comm is not None else 0
        self.size = comm.Get_size() if comm is not None else 1

    @property
    def is_root(self):
        return self.rank == 0

    def share(self, count):
        """The half-open range [start, stop) of `count` items this rank works on: items are
        split in contiguous blocks, the first `count % size` ranks taking one more."""
        return shard_range(count, self.rank, self.size)

    def allreduce_sum(self, buffer):
        """Sum a contiguous ndarray over the ranks, in place (one MPI Allreduce)."""
        if self.comm is not None:
            from mpi4py import MPI
            self.comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        return buffer

    def bcast(self, value, root=0):
        """A picklable value of rank `root`, on every rank."""
        return value if self.comm is None else self.comm.bcast(value, root=root)

    def gather(self, value, root=0):
        """A list of every rank's value on `root` (None elsewhere)."""
        return [value] if self.comm is None else self.comm.gather(value, root=root)

    def allgather(self, value):
        """A list of every rank's value, on every rank."""
        return [value] if self.comm is None else self.comm.allgather(value)

    def barrier(self):
        if self.comm is not None:
            self.comm.Barrier()

    def abort(self, code=1):
        """End every rank of the job (after a rank's error that the others cannot see)."""
        if self.comm is not None:
            self.comm.Abort(code)


def shard_range(count, rank, size):
    """Rank `rank` of `size`'s contiguous block [start, stop) of `count` items."""
    base, extra = divmod(count, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def collectively(world, work):
    """work() on every rank of `world`. When it raises a NeuralTalkError on any rank, every
    rank raises it (marked `every_rank`, so that rank 0 alone reports it): no rank is left
    waiting in a collective for one that gave up."""
    if world.size == 1:
        return work()
    try:
        result, error = work(), None
    except NeuralTalkError as e:
        result, error = None, str(e)
    errors = world.allgather(error)
    failed = [(rank, e) for rank, e in enumerate(errors) if e is not None]
    if failed:
        rank, message = failed[0]
        same = len(failed) == world.size and all(e == message for _, e in failed)
        error = NeuralTalkError(message if same else "rank %d of %d: %s"
                                % (rank, world.size, message))
        error.every_rank = True
        raise error
    return result


def launched_by_mpi(environ=None):
    environ = os.environ if environ is None else environ
    return any(name in environ for name in LAUNCHER_VARIABLES)


def world():
    """This process's World (made once)."""
    global _world
    if _world is None:
        comm = None
        if launched_by_mpi():
            try:
                from mpi4py import MPI
            except ImportError:
                raise NeuralTalkError(
                    "this command was started by an MPI launcher but mpi4py is not installed: "
                    "pip install -e \".[mpi]\" on every machine") from None
            comm = MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None
        _world = World(comm)
    return _world


def checksum(arrays):
    """A cheap fingerprint of float arrays (to see that ranks hold the same parameters):
    float64 sums of each array and of its squares, in the given order."""
    return np.array([[float(np.sum(a, dtype=np.float64)),
                      float(np.sum(np.square(a, dtype=np.float64)))] for a in arrays])
