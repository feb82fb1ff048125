"""One self-contained HTML page per study: claims vs paper, figures, tables, run status.

``write_report`` reads the study's tables (never the runs' checkpoints), embeds the PNGs
that ``make_figures`` wrote as base64, and renders ``templates/report.html.j2``. The page
needs no network: styles and the few lines of table-sorting script are inline.
"""

# ruff: noqa: RUF001  (typographic times, minus and dash signs are meant: readers see them)

from __future__ import annotations

import base64
import datetime as dt
import platform
from importlib import metadata
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import yaml

import poseshift
from poseshift.fsutil import write_text_atomic
from poseshift.study.analysis import INITS, PARTITIONS, StudyTables
from poseshift.study.claims import NOT_MEASURED, NOT_REPRODUCED, REPRODUCED, check_claims
from poseshift.study.figures import FIGURES
from poseshift.study.plotstyle import INIT_LABELS, display_name, percent

Cell = dict[str, object]  # {"text": shown, "sort": key for the sorting script}
_PARTS = {"train": "train", "within": "within", "ood": "OOD", "ood_adapted": "OOD adapted"}
# The adapted arm (plan evaluate.adapted: AdaBN per OOD group) next to the plain OOD numbers.
SUMMARY_PARTITIONS = (*PARTITIONS, "ood_adapted")
_INITS = {"imagenet": "pretrained", "scratch": "from scratch"}


def _num(value: float | None, spec: str, suffix: str = "") -> Cell:
    """A numeric cell; NaN / None shows as a dash and sorts last."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return {"text": "–", "sort": ""}
    return {"text": f"{value:{spec}}{suffix}", "sort": f"{float(value):.10g}"}


def _pm(mean: float, sd: float, spec: str, scale: float = 1.0) -> Cell:
    """'mean ± sd' (sd omitted with one shuffle), sorted by the mean."""
    cell = _num(mean * scale, spec)
    if cell["sort"] != "" and np.isfinite(sd):
        cell["text"] = f"{cell['text']} ± {sd * scale:{spec}}"
    return cell


def _text(value: object) -> Cell:
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    return {"text": text, "sort": text.lower()}


def _table(columns: list[str], rows: list[list[Cell]], numeric: set[int]) -> dict:
    return {"columns": columns, "rows": rows, "numeric": numeric}


def _network_cells(backbone: str, top1: float, init: str, fraction: float) -> list[Cell]:
    """Backbone (sorted in ImageNet order), init and fraction cells."""
    return [
        {"text": display_name(backbone), "sort": f"{top1:08.3f} {backbone}"},
        _text(_INITS.get(init, init)),
        {"text": percent(fraction), "sort": f"{fraction:.6f}"},
    ]


def summary_view(t: StudyTables) -> dict:
    """Wide summary: one row per backbone x init x fraction, error and PCK per partition."""
    s = t.summary
    parts = [p for p in SUMMARY_PARTITIONS if p in set(s["partition"])]
    columns = ["backbone", "init", "fraction", "ImageNet\ntop-1 (%)", "shuffles"]
    columns += [f"{_PARTS[p]}\nnormalized error" for p in parts]
    columns += [f"{_PARTS[p]}\nPCK (%)" for p in parts]
    rows = []
    keys = ["imagenet_top1", "backbone", "init", "fraction"]
    for (top1, backbone, init, fraction), group in s.groupby(keys):
        by = group.set_index("partition")
        row = _network_cells(backbone, top1, init, fraction)
        row += [_num(top1, ".1f"), _num(group["n_shuffles"].max(), "d")]
        row += [_pm(by.at[p, "normalized_error_mean"], by.at[p, "normalized_error_std"], ".3f")
                if p in by.index else _num(None, "") for p in parts]  # fmt: skip
        row += [_pm(by.at[p, "pck_mean"], by.at[p, "pck_std"], ".1f", 100)
                if p in by.index else _num(None, "") for p in parts]  # fmt: skip
        rows.append(row)
    return _table(columns, rows, set(range(3, len(columns))))


def regressions_view(t: StudyTables) -> dict:
    # slope and intercept in one unit (x 100), so a row is a line: y % = intercept + slope x top-1
    columns = ["init", "partition", "metric", "fraction", "n", "slope (%/pt)", "intercept (%)"]
    columns.append("R²")
    columns.append("p")
    rows = []
    for r in t.fits.itertuples():
        rows.append([
            _text(_INITS.get(r.init, r.init)), _text(_PARTS.get(r.partition, r.partition)),
            _text("normalized error" if r.metric == "normalized_error" else "PCK"),
            _num(r.fraction * 100, "g", " %"), _num(r.n, "d"), _num(r.slope_pct, "+.3f"),
            _num(None if r.intercept is None else 100 * r.intercept, ".2f"), _num(r.r2, ".3f"),
            _num(r.p, ".2g"),
        ])  # fmt: skip
    return _table(columns, rows, {3, 4, 5, 6, 7, 8})


def gains_view(t: StudyTables) -> dict:
    """Wide gains: one row per backbone x fraction, error gain and PCK difference per partition."""
    g = t.gains
    parts = [p for p in PARTITIONS if p in set(g["partition"])]
    columns = ["backbone", "ImageNet\ntop-1 (%)", "fraction"]
    columns += [f"{_PARTS[p]}\ngain ×" for p in parts]
    columns += [f"{_PARTS[p]} PCK\nΔ (points)" for p in parts]
    rows = []
    for (top1, backbone, fraction), group in g.groupby(["imagenet_top1", "backbone", "fraction"]):
        by = group.set_index("partition")
        name, _, frac = _network_cells(backbone, top1, "", fraction)  # a gain has both inits
        row = [name, _num(top1, ".1f"), frac]
        row += [_num(by.at[p, "gain"] if p in by.index else None, ".2f") for p in parts]
        row += [_num(by.at[p, "pck_diff"] * 100 if p in by.index else None, "+.1f") for p in parts]
        rows.append(row)
    return _table(columns, rows, set(range(1, len(columns))))


def per_shuffle_view(t: StudyTables) -> dict:
    columns = ["run", "backbone", "init", "fraction", "shuffle", "iteration", "partition"]
    columns += ["images", "error (px)", "normalized error", "PCK (%)"]
    rows = []
    order = {p: i for i, p in enumerate(PARTITIONS)}
    final = t.final.assign(_p=t.final["partition"].map(order))
    for r in final.sort_values(["imagenet_top1", "init", "fraction", "shuffle", "_p"]).itertuples():
        rows.append([
            _text(r.run_id), *_network_cells(r.backbone, r.imagenet_top1, r.init, r.fraction),
            _num(r.shuffle, "d"),
            _num(r.iteration, ",d"), _text(_PARTS.get(r.partition, r.partition)),
            _num(r.n_images, "d"), _num(r.error_px, ".2f"), _num(r.normalized_error, ".3f"),
            _num(r.pck * 100, ".1f"),
        ])  # fmt: skip
    return _table(columns, rows, {3, 4, 5, 7, 8, 9, 10})


def status_view(study_dir: Path) -> dict | None:
    """Counts per status and the table of runs; None when the runner wrote no status.csv."""
    path = study_dir / "status.csv"
    if not path.is_file():
        return None
    status = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in ("run_id", "status", "error"):
        if column not in status.columns:
            status[column] = ""
    counts = status["status"].value_counts().to_dict()
    rank = {"failed": 0, "running": 1, "queued": 2, "done": 3}
    status = status.assign(_r=status["status"].map(rank).fillna(1)).sort_values(["_r", "run_id"])
    rows = [[_text(r.run_id), _text(r.status), _text(r.error)] for r in status.itertuples()]
    problems = [row for row in rows if row[1]["text"] != "done"]
    table = _table(["run", "status", "error"], rows, set())
    return {"counts": counts, "total": len(status), "table": table, "problems": problems}


def figures_view(study_dir: Path) -> list[dict]:
    """The figures make_figures wrote, in the report's order, as base64 PNG."""
    out = []
    for spec in FIGURES:
        png = study_dir / "figures" / f"{spec.stem}.png"
        if png.is_file():
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            out.append({"id": spec.stem, "title": spec.title, "caption": spec.caption,
                        "src": f"data:image/png;base64,{data}"})  # fmt: skip
    return out


def environment(study_dir: Path) -> list[tuple[str, str]]:
    """What produced the numbers: versions, dates, paths (the report's Environment section)."""
    versions = []
    for package in ("numpy", "pandas", "scipy", "matplotlib", "torch", "timm"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    results = study_dir / "results.csv"
    written = dt.datetime.fromtimestamp(results.stat().st_mtime, dt.timezone.utc)
    return [
        ("poseshift", poseshift.__version__),
        ("report written", dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("results.csv written", written.strftime("%Y-%m-%d %H:%M UTC")),
        ("study directory", str(study_dir.resolve())),
        ("Python", f"{platform.python_version()} on {platform.platform(terse=True)}"),
        ("libraries", ", ".join(versions)),
    ]


def _plan(study_dir: Path) -> tuple[str | None, str]:
    """The plan's text and its name (the directory's name when there is no plan)."""
    path = study_dir / "plan.yaml"
    if not path.is_file():
        return None, study_dir.resolve().name
    text = path.read_text(encoding="utf-8")
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        loaded = None
    name = loaded.get("name") if isinstance(loaded, dict) else None
    return text, str(name or study_dir.resolve().name)


def _overview(t: StudyTables) -> list[tuple[str, str]]:
    r = t.results
    runs = r["run_id"].nunique()
    iterations = sorted(t.final["iteration"].unique())
    return [
        ("runs with results", str(runs)),
        ("backbones", ", ".join(display_name(b) for b in r.sort_values("imagenet_top1")
                                ["backbone"].unique())),
        ("initializations", ", ".join(INIT_LABELS.get(i, i) for i in INITS if i in set(r["init"]))),
        ("training fractions", ", ".join(percent(f) for f in sorted(r["fraction"].unique()))),
        ("shuffles", ", ".join(str(s) for s in sorted(r["shuffle"].unique()))),
        ("final iterations", ", ".join(f"{i:,}" for i in iterations)),
        ("analysis fraction", f"{percent(t.fraction)} (fits and Figure 2B / 4A / 9B)"),
    ]  # fmt: skip


def render_report(study_dir: str | Path) -> str:
    """The report's HTML for a study directory (figures are embedded when present)."""
    study_dir = Path(study_dir)
    tables = StudyTables.load(study_dir)
    claims = check_claims(tables)
    plan_text, name = _plan(study_dir)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("poseshift.study", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    verdicts = [c.verdict for c in claims]
    return env.get_template("report.html.j2").render(
        name=name,
        overview=_overview(tables),
        claims=claims,
        verdict_counts={v: verdicts.count(v) for v in (REPRODUCED, NOT_REPRODUCED, NOT_MEASURED)},
        figures=figures_view(study_dir),
        summary=summary_view(tables),
        regressions=regressions_view(tables),
        gains=gains_view(tables) if not tables.gains.empty else None,
        per_shuffle=per_shuffle_view(tables),
        status=status_view(study_dir),
        plan=plan_text,
        environment=environment(study_dir),
        fraction=percent(tables.fraction),
    )


def write_report(study_dir: str | Path) -> Path:
    """Write DIR/report.html (one self-contained file) and return its path."""
    html = render_report(study_dir)
    return write_text_atomic(Path(study_dir) / "report.html", html)
