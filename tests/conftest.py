import os

import pytest

SHARED = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
EXAMPLE_IMAGES = os.path.join(SHARED, "fixtures", "example_images")
NEURALTALK_CHECKPOINT = os.path.join(SHARED, "fixtures", "neuraltalk_checkpoint")


@pytest.fixture
def example_images():
    if not os.path.isdir(EXAMPLE_IMAGES):
        pytest.skip("../shared/fixtures/example_images is not beside this checkout")
    return EXAMPLE_IMAGES


@pytest.fixture
def neuraltalk_checkpoint_dir():
    if not os.path.isdir(NEURALTALK_CHECKPOINT):
        pytest.skip("../shared/fixtures/neuraltalk_checkpoint is not beside this checkout")
    return NEURALTALK_CHECKPOINT


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory):
    """A data root holding the demo dataset `shapes`, generated once per test session."""
    from neuraltalk.demo.dataset import ensure_shapes
    root = tmp_path_factory.mktemp("data")
    ensure_shapes(str(root / "shapes"))
    return str(root)


@pytest.fixture
def mpirun():
    """run(n, argv, **subprocess_kwargs) -> CompletedProcess: `mpirun -n n argv` on
    localhost, with what Open MPI needs as root and in a container, one BLAS thread a rank.
    Skips only where mpirun or mpi4py is absent (CI installs the [mpi] extra)."""
    import shutil
    import subprocess
    import sys
    launcher = shutil.which("mpirun")
    if launcher is None:
        pytest.skip("mpirun is not installed (pip install -e \".[mpi]\")")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed (pip install -e \".[mpi]\")")

    def run(n, argv, env=None, timeout=300, **kwargs):
        environ = dict(os.environ if env is None else env)
        # more ranks than cores is allowed: the tests run 2-3 ranks on CI's 2 cores
        environ.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                       OMPI_MCA_rmaps_base_oversubscribe="1",
                       PRTE_MCA_rmaps_default_mapping_policy=":oversubscribe",
                       OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                       PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        argv = [sys.executable if a == "python" else a for a in argv]
        return subprocess.run([launcher, "-n", str(n)] + list(argv), env=environ,
                              capture_output=True, text=True, timeout=timeout, **kwargs)
    return run
