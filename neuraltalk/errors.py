"""The one exception type for errors a user can cause.

Scripts catch it, print its message (which names the file or flag and what to do)
and exit with status 2, so a bad input never ends in a NumPy traceback.
"""


class NeuralTalkError(Exception):
    """A problem with the user's input: a file, a flag or a checkpoint."""


def run_reporting_errors(function, *args, **kwargs):
    """Run a command's work: its exit code (0 unless it returns an int), or 2 after
    printing `error: <message>` for a NeuralTalkError."""
    import sys
    try:
        code = function(*args, **kwargs)
    except NeuralTalkError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    return code if isinstance(code, int) else 0
