"""Labeled frames in every format a camera or an editor produces, and broken ones.

Every frame becomes RGB uint8: gray is repeated, alpha is dropped, 16 bits keep their high
byte (today a 16-bit gray PNG loaded as a white frame). Truncated, corrupt, empty and 32-bit
files are one PoseshiftError line naming the image, raised when the project is loaded.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from refusals import cli_refuses, one_line_error

from conftest import make_project
from poseshift.data.images import read_image
from poseshift.data.project import load_project
from poseshift.errors import PoseshiftError

FRAME = "labeled-data/video0/img001.png"  # 48 x 32, as make_project draws them


@pytest.fixture
def project(tmp_path: Path) -> Path:
    make_project(tmp_path / "proj", groups=1, frames=3)
    return tmp_path / "proj"


def loaded_frame(project: Path) -> np.ndarray:
    dataset = load_project(project)
    image = dataset.load_image(1)
    assert image.dtype == np.uint8 and image.shape == (32, 48, 3)
    return image


def test_16_bit_gray_png_is_scaled_not_white(project: Path) -> None:
    ramp = np.linspace(0, 65535, 48 * 32).reshape(32, 48).astype(np.uint16)
    cv2.imwrite(str(project / FRAME), ramp)
    image = loaded_frame(project)
    np.testing.assert_array_equal(image[..., 0], ramp >> 8)
    assert image.min() == 0 and image.max() == 255


def test_16_bit_color_png_is_scaled(project: Path) -> None:
    rgb = np.zeros((32, 48, 3), np.uint16)
    rgb[..., 0], rgb[..., 2] = 65535, 1000  # red full, blue 1000/65535
    cv2.imwrite(str(project / FRAME), rgb[..., ::-1])  # OpenCV writes BGR
    image = loaded_frame(project)
    assert (image[..., 0] == 255).all() and (image[..., 2] == 1000 >> 8).all()


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "1"])
def test_gray_palette_and_alpha_images_become_rgb(project: Path, mode: str) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (32, 48, 3), np.uint8)
    Image.fromarray(rgb).convert(mode).save(project / FRAME)
    image = loaded_frame(project)
    if mode == "RGBA":
        np.testing.assert_array_equal(image, rgb)  # alpha dropped, colors kept
    if mode in ("L", "LA"):
        assert (image[..., 0] == image[..., 1]).all()


def test_32_bit_float_image_is_refused(project: Path) -> None:
    tiff = project / FRAME
    Image.fromarray(np.ones((32, 48), np.float32)).save(tiff, format="TIFF")
    with pytest.raises(PoseshiftError, match="has 32-bit float pixels") as excinfo:
        load_project(project)
    assert str(tiff) in one_line_error(excinfo)


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((32, 48, 3), 90, np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "damage",
    [
        lambda png: png[: len(png) // 2],  # truncated PNG
        lambda png: png[:40] + b"\x00" * (len(png) - 40),  # corrupt PNG data
        lambda png: jpeg_bytes()[:300],  # truncated JPEG under a .png name
        lambda png: b"",
        lambda png: b"GIF89a" + b"\xff" * 20,
    ],
)
def test_broken_image_is_refused_when_loading(project: Path, damage) -> None:
    path = project / FRAME
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(PoseshiftError, match=r"cannot be decoded .* truncated or not an image"):
        load_project(project)


def test_data_info_names_the_broken_image(project: Path) -> None:
    path = project / FRAME
    path.write_bytes(path.read_bytes()[:100])
    cli_refuses(["data", "info", project], path)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.binary(max_size=300))
def test_random_bytes_as_an_image_are_a_one_line_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "frame.png"
    path.write_bytes(content)
    with pytest.raises(PoseshiftError) as excinfo:
        read_image(path)
    assert str(path) in one_line_error(excinfo)
