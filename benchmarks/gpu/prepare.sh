#!/usr/bin/env bash
# Run HERE before a session with a lent GPU: fills .gpu/ (ignored by git, carried to the
# device with `carry: [".gpu"]`) with the wheels of wheels.txt and the openfield project.
set -euo pipefail
cd "$(dirname "$0")/../.."
shared="${POSESHIFT_SHARED:?set POSESHIFT_SHARED to the shared data folder (e.g. ../shared)}"
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/whl
for spec in $(grep -v '^#' benchmarks/gpu/wheels.txt); do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux1_x86_64 -d .gpu/whl "$spec"
done
cp -r "$shared/data/openfield/openfield-Pranav-2018-10-30" .gpu/openfield
chmod -R u+w .gpu/openfield
du -sh .gpu
