"""The one exception type for errors a user can cause.

Every command runs through neuraltalk.cli.run_reporting_errors, which prints its message
(naming the file or flag and what to do) and exits with status 2, so a bad input never
ends in a NumPy traceback.
"""


class NeuralTalkError(Exception):
    """A problem with the user's input: a file, a flag or a checkpoint."""
