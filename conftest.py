"""pytest set-up shared by the unit tests and nbval.

nbval re-executes the committed (full-profile) notebooks; ``KDLIB_PROFILE=quick`` makes
``kdlib.profiles.resolve_profile`` switch them to the quick profile. Only cells marked ``# NBVAL_CHECK_OUTPUT``
(outputs identical in both profiles) are compared, and stderr (progress bars, warnings) never is.
"""

import os

os.environ.setdefault("KDLIB_PROFILE", "quick")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)
