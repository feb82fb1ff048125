"""The HTML report: tables, embedded figures, claims, run status; rendered in Chromium."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import fake_study
import pytest
import typer
from fake_study import make_study
from PIL import Image
from typer.testing import CliRunner

import poseshift
from poseshift.errors import PoseshiftError
from poseshift.study import figures
from poseshift.study.claims import CLAIMS
from poseshift.study.figures import FIGURES
from poseshift.study.report import write_report

CHROMIUM = Path("/usr/bin/chromium")
TABLES = ("claims-table", "summary-table", "regressions-table", "gains-table", "status-table")


@pytest.fixture(scope="module")
def drawn_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    return fake_study.drawn_study(tmp_path_factory)


@pytest.fixture(scope="module")
def report(drawn_study: tuple[Path, list[Path]]) -> Path:
    return write_report(drawn_study[0])


def test_report_has_tables_figures_claims_and_status(report: Path) -> None:
    html = report.read_text()
    for table in (*TABLES, "per-shuffle-table", "problem-runs"):
        assert f'id="{table}"' in html, table
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(FIGURES)
    assert all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)
    assert html.count('<span class="badge ') == len(CLAIMS)
    assert "\u22120.33 %/pt" in html and "§2.2, Fig. 2B" in html  # the paper's numbers, cited
    assert "RuntimeError: CUDA out of memory" in html  # the failed run and its error
    assert "name: fake" in html  # plan.yaml
    assert f"<dd>{poseshift.__version__}</dd>" in html
    summary = html.split('id="summary-table"')[1].split("</table>")[0]
    assert summary.count("<tr>") == 1 + 3 * 2 * 3  # header + backbone x init x fraction
    assert re.search(r'data-sort="[0-9.e-]+">0\.\d{3} ± 0\.\d{3}</td>', summary)
    assert "http://" not in html and "https://" not in html  # works offline


def test_report_escapes_text_and_tolerates_missing_files(tmp_path: Path) -> None:
    root = make_study(tmp_path, backbones=("resnet50",), fractions=(0.5,), plots=False)
    (root / "status.csv").write_text("run_id,status,error\nx,failed,<script>alert(1)</script>\n")
    (root / "plan.yaml").unlink()
    html = write_report(root).read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "No figures yet" in html and 'id="plan"' not in html
    (root / "status.csv").unlink()
    assert "No status.csv" in write_report(root).read_text()


def test_cli_report_draws_figures_and_writes_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from poseshift.cli.study_report import report as report_command

    drawn = []
    monkeypatch.setattr(figures, "make_figures", lambda d: drawn.append(d) or [])
    app = typer.Typer()
    app.command()(report_command)
    root = make_study(tmp_path / "study", backbones=("resnet50",), fractions=(0.5,), plots=False)
    result = CliRunner().invoke(app, [str(root)])
    assert result.exit_code == 0, result.output
    assert drawn == [root]
    assert str(root / "report.html") in result.output.replace("\n", "")
    assert (root / "report.html").is_file()
    with pytest.raises(PoseshiftError, match=r"results\.csv not found"):
        report_command(tmp_path / "empty")


def _chromium(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    return subprocess.run(
        [str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=90, check=False
    )


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed")
    shot = tmp_path / "shot.png"
    page = report.as_uri()
    dom = _chromium("--dump-dom", f"--screenshot={shot}", "--window-size=1280,2000", page,
                    tmp_path=tmp_path).stdout  # fmt: skip
    for table in TABLES:
        assert re.search(rf'<table id="{table}" class="sortable[^"]*" data-sort-ready="true"', dom)
    assert dom.count('tabindex="0"') > 20  # the script made every header focusable
    assert dom.count("<img ") == len(FIGURES)
    image = Image.open(shot).convert("L")
    assert image.size == (1280, 2000)
    low, high = image.getextrema()
    assert high - low > 100 and len(image.getcolors(maxcolors=1 << 16) or []) > 50


def test_a_regression_row_is_a_line_in_one_unit(tmp_path: Path) -> None:
    """intercept + slope x top-1, read off the table, is the fitted error (in %)."""
    from poseshift.study.analysis import StudyTables
    from poseshift.study.report import regressions_view

    study = make_study(tmp_path, noise=0.0, plots=False, long_runs=False, iterations=(50, 100))
    tables = StudyTables.load(study)
    view = regressions_view(tables)
    header = [str(c) for c in view["columns"]]
    slope_at, intercept_at = header.index("slope (%/pt)"), header.index("intercept (%)")
    fit = tables.fits.iloc[0]
    row = view["rows"][0]
    slope, intercept = (float(row[i]["text"]) for i in (slope_at, intercept_at))
    expected = 100 * (fit.intercept + fit.slope * 70)
    assert intercept + slope * 70 == pytest.approx(expected, abs=0.05)  # the cells are rounded
