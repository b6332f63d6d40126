#!/usr/bin/env bash
# Benchmark-only virtualenvs for peer libraries that pin old dependencies (never needed by deeprl
# itself or its tests). Usage: benchmarks/peer_venvs.sh mbrl   -> benchmarks/.venv-mbrl
#
# mbrl-lib 0.2.0 pins gymnasium 0.26.3 and hydra-core 1.0, whose dataclasses fail on Python 3.11,
# so its venv uses Python 3.10 (pyenv's 3.10.13 here). On 3.10, torch==2.13.0 resolves to the
# CUDA wheel (about 4.6 GB with its libraries); it runs on the CPU all the same.
set -euo pipefail
cd "$(dirname "$0")"
case "${1:-}" in
  mbrl)
    PY=${PYTHON310:-python3.10}
    # a pyenv shim answers `python3.10` only when 3.10 is selected; fall back to pyenv's install
    if ! "$PY" -c "" 2>/dev/null && command -v pyenv >/dev/null; then
      PY="$(pyenv root)/versions/$(pyenv versions --bare | grep -m1 '^3\.10')/bin/python3.10"
    fi
    [ -x .venv-mbrl/bin/python ] || "$PY" -m venv .venv-mbrl
    .venv-mbrl/bin/pip install --quiet "torch==2.13.0" "mbrl==0.2.0"
    # InvertedPendulum-v4 needs MuJoCo's bindings; gymnasium 0.26's checker uses np.bool8 (numpy < 2)
    .venv-mbrl/bin/pip install --quiet "mujoco==2.3.7" "numpy<2"
    .venv-mbrl/bin/python -c "import mbrl, gymnasium; print('mbrl', mbrl.__version__, 'gymnasium', gymnasium.__version__)"
    ;;
  *)
    echo "usage: $0 mbrl" >&2
    exit 2
    ;;
esac
