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
