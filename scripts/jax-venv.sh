#!/usr/bin/env bash
# Creates .venv-jax: a Python environment with JAX (XLA on the CPU) and
# optax, used only as the compile-time peer in bench/compile_time.sh; Loom
# itself has no Python. Idempotent: a no-op when the environment already
# imports jax and optax.
#
#   JAX_VERSION pins the PyPI version (default: the newest); PYTHON picks the
#   interpreter the environment is made from (python3 >= 3.11).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-jax
if [ -x "$venv/bin/python" ] &&
  "$venv/bin/python" -c 'import jax, optax' 2>/dev/null; then
  exit 0
fi
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
spec=jax
[ -n "${JAX_VERSION:-}" ] && spec="jax==$JAX_VERSION"
"$venv/bin/pip" install --quiet "$spec" optax
"$venv/bin/python" -c 'import jax, optax; print("jax", jax.__version__, "optax", optax.__version__)'
