"""Training-area fixtures: real datasets and small real training runs, built once per session."""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # for training_helpers and train_worker


@pytest.fixture(scope="session")
def digits():
    from training import datasets

    return datasets.load("digits")


@pytest.fixture(scope="session")
def mnist():
    from training import datasets

    return datasets.load("mnist")


@pytest.fixture(scope="session")
def adult():
    from training import datasets

    return datasets.load("adult")


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory, digits):
    """The cnn teacher trained 10 epochs on digits with every output written."""
    from training import train

    out = tmp_path_factory.mktemp("digits_run")
    return train.fit("cnn", digits, epochs=10, out_dir=out, progress=False)


@pytest.fixture(scope="session")
def adult_run(tmp_path_factory, adult):
    """Wide & Deep trained 1 epoch on adult with every output written."""
    from training import train

    out = tmp_path_factory.mktemp("adult_run")
    return train.fit("wide-deep", adult, epochs=1, out_dir=out, progress=False, histograms=False)
