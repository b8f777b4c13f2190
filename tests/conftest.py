"""Fixtures shared by test modules."""

import pytest

from handmt.cli import main


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A tiny synthetic FPHA-layout set written by `handmt synth`: 3 classes, 2 subjects, 2
    sequences each (6 train, 6 test), 8 frames."""
    root = tmp_path_factory.mktemp("cli") / "synth"
    assert main(["synth", "fpha", "--out", str(root), "--classes", "3", "--subjects", "2",
                 "--seqs", "2", "--frames", "8", "--size", "160", "--seed", "1"]) == 0
    return root
