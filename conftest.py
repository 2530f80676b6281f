"""Settings for every test and notebook that pytest runs: figures go to a scratch folder (so a test run never
replaces the committed ones), and at most two threads (the size of the machines this suite is budgeted for).
Data and checkpoints come from the package itself: nothing outside the checkout is needed."""
import os
import tempfile
from pathlib import Path

import torch

os.environ.setdefault("BERTGEN_FIGURES", str(Path(tempfile.gettempdir()) / "bertgen_mini_test_figures"))

torch.set_num_threads(min(2, torch.get_num_threads()))
