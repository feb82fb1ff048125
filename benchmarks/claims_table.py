"""Print a study's claims table and pretrained-vs-scratch summary as Markdown.

.venv/bin/python benchmarks/claims_table.py studies/cpu
"""

from __future__ import annotations

import sys

from poseshift.demo import pretraining_sentence, summary
from poseshift.study.analysis import StudyTables
from poseshift.study.claims import check_claims


def main(study_dir: str) -> None:
    tables = StudyTables.load(study_dir)
    print("| claim | paper | this study | verdict |\n|---|---|---|---|")
    for c in check_claims(tables):
        print(f"| {c.key} ({c.source}) | {c.claim} | {c.measured} | **{c.verdict}** |")
    table = summary(tables.results)
    print("\n| backbone | top-1 | init | fraction | within | OOD |\n|---|---|---|---|---|---|")
    for r in table.itertuples():
        print(
            f"| {r.backbone} | {r.imagenet_top1:.1f} | {r.init} | {r.fraction:g} | "
            f"{r.within:.3f} | {r.ood:.3f} |"
        )
    for fraction, part in table.groupby("fraction"):
        print(f"\nAt {fraction:g}: {pretraining_sentence(part)}")
    print(f"\nAll fractions: {pretraining_sentence(table)}")


if __name__ == "__main__":
    main(sys.argv[1])
