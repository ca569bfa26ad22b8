"""The one exception type for errors a user can cause.

Scripts catch it, print its message (which names the file or flag and what to do)
and exit with status 2, so a bad input never ends in a NumPy traceback.
"""


class NeuralTalkError(Exception):
    """A problem with the user's input: a file, a flag or a checkpoint."""
