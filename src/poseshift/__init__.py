"""poseshift: animal pose estimation that measures and improves out-of-domain robustness."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("poseshift")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from poseshift.errors import PoseshiftError

__all__ = ["PoseshiftError", "__version__"]
