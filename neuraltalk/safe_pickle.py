"""The one unpickler for every pickle the project reads: checkpoints and PyTorch .pth files.

A pickle is a small program. Its GLOBAL and STACK_GLOBAL instructions (and the copyreg
extension codes) name any callable of any module, and REDUCE calls it, so the plain
`pickle.Unpickler` runs whatever an untrusted file names. All of those names reach
`find_class`, which here answers only from the caller's allow-list: a mapping
(module, name) -> the object to use. Everything else is refused before it is called.
Persistent ids (how torch.save points at its storages) go to the caller's hook, or are
refused when there is none.
"""
import pickle


class Forbidden(pickle.UnpicklingError):
    """A pickle names a callable that is not on the allow-list."""

    def __init__(self, module, name):
        super().__init__("%s.%s" % (module, name))
        self.module, self.name = module, name


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` that resolves names only through `allowed`.

    allowed: {(module, name): object}; the object need not be what the name means
    elsewhere (the .pth reader maps torch's names to its own NumPy stand-ins).
    persistent_load: called with each persistent id, or None to refuse them.
    Other keyword arguments (encoding=...) go to pickle.Unpickler.
    """

    def __init__(self, file, allowed, persistent_load=None, **kwargs):
        super().__init__(file, **kwargs)
        self._allowed = allowed
        self._persistent_load = persistent_load

    def find_class(self, module, name):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise Forbidden(module, name) from None

    def persistent_load(self, pid):
        if self._persistent_load is None:
            raise pickle.UnpicklingError("a persistent id (%.40r), which this file never holds"
                                         % (pid,))
        return self._persistent_load(pid)


def load(file, allowed, persistent_load=None, **kwargs):
    """The next object pickled in `file` (a binary file object), names from `allowed` only."""
    return RestrictedUnpickler(file, allowed, persistent_load, **kwargs).load()
