"""``python -m poseshift``: the same CLI as the ``poseshift`` command."""

from poseshift.cli import main

main()
