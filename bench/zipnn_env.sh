#!/usr/bin/env bash
# The benchmarks' ZipNN (zipnn from PyPI, pinned in bench/requirements/zipnn.txt
# with torch, which it imports): a virtual environment in .pyenv-bench/zipnn
# (git-ignored), kept while its requirements do not change.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
exec "$here/tools/pyenv.sh" "$here/.pyenv-bench" "$here/bench/requirements"
