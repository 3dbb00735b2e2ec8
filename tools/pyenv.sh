#!/usr/bin/env bash
# The project's Python environments, from PyPI, every package pinned:
#   tools/pyenv.sh DIR   makes DIR/hf-current, DIR/hf-0.20 and DIR/zllm
#                        (virtual environments of Debian's python3) from
#                        python/requirements/*.txt; an environment whose
#                        requirements did not change is kept
# A second argument takes the requirements from another directory (the
# benchmarks' bench/requirements).  With ZLLM_LIBRARY=BUILD/lib/libzllm.so it then installs the zllm Python
# package (python/) into DIR/zllm against that library, afresh each time.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: tools/pyenv.sh DIR [REQUIREMENTS_DIR]}
reqs=${2:-$here/python/requirements}
mkdir -p "$dir"
for req in "$reqs"/*.txt; do
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

if [ -n "${ZLLM_LIBRARY:-}" ]; then
  # a copy: building the package writes beside its sources
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cp -r "$here/python" "$tmp/src"
  "$dir/zllm/bin/pip" install --quiet --disable-pip-version-check --no-deps --no-build-isolation --no-index \
    --force-reinstall "$tmp/src"
  echo "pyenv: the zllm package installed into $dir/zllm (library: $ZLLM_LIBRARY)"
fi
