"""The restricted unpickler: only allow-listed names resolve; nothing else runs."""
import collections
import copyreg
import io
import pickle

import pytest

from neuraltalk import safe_pickle


class _CreatesFile:
    """Unpickling this with the plain pickle module creates the file at `path`."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_allowed_names_load():
    data = pickle.dumps(collections.OrderedDict(a=1))
    loaded = safe_pickle.load(io.BytesIO(data), {("collections", "OrderedDict"): collections.OrderedDict})
    assert loaded == collections.OrderedDict(a=1)


def test_a_name_off_the_list_is_refused_before_it_runs(tmp_path):
    data = pickle.dumps({"w": _CreatesFile(tmp_path / "owned")})
    with pytest.raises(safe_pickle.Forbidden, match="io.open") as e:
        safe_pickle.load(io.BytesIO(data), {("collections", "OrderedDict"): collections.OrderedDict})
    assert (e.value.module, e.value.name) == ("io", "open")
    assert not (tmp_path / "owned").exists()


def test_a_name_resolves_to_the_object_the_list_gives():
    stand_in = object()
    data = b"\x80\x02ctorch\nFloatStorage\nq\x00."  # GLOBAL torch.FloatStorage
    assert safe_pickle.load(io.BytesIO(data), {("torch", "FloatStorage"): stand_in}) is stand_in


def test_an_extension_code_goes_through_the_allow_list(tmp_path):
    code = 0x7ABCDEF0
    copyreg.add_extension("io", "open", code)
    try:  # EXT4 code, then call it with (path, "w")
        data = (b"\x80\x02\x84" + code.to_bytes(4, "little")
                + pickle.dumps((str(tmp_path / "owned"), "w"), protocol=2)[2:-1] + b"R.")
        with pytest.raises(safe_pickle.Forbidden, match="io.open"):
            safe_pickle.load(io.BytesIO(data), {})
    finally:
        copyreg.remove_extension("io", "open", code)
    assert not (tmp_path / "owned").exists()


def test_persistent_ids_are_refused_without_a_hook():
    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", "0") if obj == "tensor" else None
    f = io.BytesIO()
    Pickler(f, protocol=2).dump(["tensor"])
    with pytest.raises(pickle.UnpicklingError, match="persistent id"):
        safe_pickle.load(io.BytesIO(f.getvalue()), {})
    assert safe_pickle.load(io.BytesIO(f.getvalue()), {},
                            persistent_load=lambda pid: pid[1]) == ["0"]
