#!/usr/bin/env bash
# The project's Python environments, from PyPI, every package pinned:
#   tools/pyenv.sh DIR   makes DIR/hf-current and DIR/hf-0.20 (virtual
#                        environments of Debian's python3) from
#                        python/requirements/*.txt; an environment whose
#                        requirements did not change is kept
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: tools/pyenv.sh DIR}
mkdir -p "$dir"
for req in "$here"/python/requirements/*.txt; do
  name=$(basename "$req" .txt)
  env="$dir/$name"
  stamp=$(sha256sum "$req" | cut -c1-64)
  if [ -x "$env/bin/python" ] && [ "$(cat "$env/.zllm-requirements" 2>/dev/null)" = "$stamp" ]; then
    echo "pyenv: $env up to date"
    continue
  fi
  rm -rf "$env"
  /usr/bin/python3 -m venv "$env"
  "$env/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$stamp" >"$env/.zllm-requirements"
  echo "pyenv: $env made from $(basename "$req")"
done
