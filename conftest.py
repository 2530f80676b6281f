"""Settings for every test and notebook that pytest runs: data from ../shared/data when $BERTGEN_DATA is unset
(CI's layout), and at most two threads (the size of the machines this suite is budgeted for)."""
import os
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent
if "BERTGEN_DATA" not in os.environ and (REPO.parent / "shared" / "data").is_dir():
    os.environ["BERTGEN_DATA"] = str(REPO.parent / "shared" / "data")

torch.set_num_threads(min(2, torch.get_num_threads()))
