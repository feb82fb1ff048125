"""Labels from other tools in and out of DeepLabCut projects (most formats via sleap-io).

``detect`` names a source's format, the per-format readers turn it into ``ImportedLabels``,
``imported.write_imported`` makes the project (the one place images are staged and the
project is written), ``export`` writes a project's labels as .slp / .nwb / COCO.
"""
