"""poseshift: animal pose estimation that measures and improves out-of-domain robustness."""

import os
from importlib.metadata import PackageNotFoundError, version

# OpenMP threads that spin while waiting collapse torch's CPU speed by 10-50x as soon as
# another process uses a core (measured: 7.1 vs 0.13 s per training step on 2 busy cores).
# Passive waiting costs nothing on an idle machine. Set before torch loads; users may override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    __version__ = version("poseshift")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from poseshift.errors import PoseshiftError

__all__ = ["PoseshiftError", "__version__"]
