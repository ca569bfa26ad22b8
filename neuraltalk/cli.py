"""What every entry point shares: one line for a user's error, and the flags that more
than one command takes, spelled and checked once.

Every command (driver.py, predict_on_images.py, eval_sentence_predictions.py and the
`python -m neuraltalk.*` tools) runs its work through `run_reporting_errors`, so a bad
input prints `error: <what and what to do>` and exits 2, never a traceback.
"""
import sys

from neuraltalk.errors import NeuralTalkError


def run_reporting_errors(function, *args, **kwargs):
    """Run a command's work: its exit code (0 unless it returns an int), or 2 after
    printing `error: <message>` for a NeuralTalkError. On a rank of an MPI job, an error
    that every rank met (parallel.collectively) is printed by rank 0 alone; one that only
    this rank met, or a crash, ends the whole job (MPI_Abort), as the other ranks would
    otherwise wait for this one forever."""
    try:
        code = function(*args, **kwargs)
    except NeuralTalkError as e:
        ranks = _world()
        if ranks is not None and not getattr(e, "every_rank", False):
            print("error: rank %d of %d: %s" % (ranks.rank, ranks.size, e), file=sys.stderr,
                  flush=True)
            ranks.abort(2)
        if ranks is None or ranks.is_root:
            print("error: %s" % e, file=sys.stderr)
        return 2
    except Exception:
        ranks = _world()
        if ranks is not None:
            import traceback
            traceback.print_exc()
            sys.stderr.flush()
            ranks.abort(1)
        raise
    return code if isinstance(code, int) else 0


def _world():
    """This MPI job's World when it has more than one rank, else None."""
    from neuraltalk.parallel import world
    try:
        ranks = world()
    except NeuralTalkError:  # started by mpirun without mpi4py: no job to end
        return None
    return ranks if ranks.size > 1 else None


def add_checkpoint(parser, help="a checkpoint written by driver.py or NeuralTalk, or a "
                                "run's folder (its best checkpoint)"):
    parser.add_argument("checkpoint_path", help=help)


def add_data_root(parser):
    parser.add_argument("--data_root", default=None,
                        help="where dataset folders live (default: as in training)")


def add_max_images(parser, help="at most this many images (-1: all)"):
    parser.add_argument("--max_images", type=int, default=-1, help=help)


def add_beam_size(parser, help="beam size (1: greedy)"):
    parser.add_argument("-b", "--beam_size", type=int, default=1, help=help)


def check_beam_size(parser, args):
    if args.beam_size < 1:
        parser.error("--beam_size must be at least 1")


def add_out(parser, help="output folder (default: the checkpoint's)"):
    parser.add_argument("--out", default=None, help=help)
