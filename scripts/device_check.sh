#!/usr/bin/env bash
# The one command for an accelerator machine (GPU or TPU with JAX installed; nothing is downloaded):
#
#   scripts/device_check.sh [--quick] [--out DIR] [info] [tests] [notebooks] [bench]   (default: all four)
#
#   info       backend.info() of the default backend (which devices meshes use)
#   tests      the unit tests (pytest tests/; they pin themselves to 8 simulated CPU devices, see
#              tests/conftest.py), then tests/test_one_device.py's one-device fallback checks
#   notebooks  every notebook executed headless on the default backend (mlsys_core.report, as
#              `make reproduce`): writes DIR/report.md and the executed copies; the notebooks are not touched
#   bench      the benchmarks that run on the accelerator: fl (the vmapped FedAvg round runs on the
#              default device; its Flower round only where flwr imports) and sharding (its mesh: the chips
#              when there are 8, else CPU devices); bandana and tictac (CPU kernels, peers from the bench
#              extra) when their imports work
#   --quick    a short subset to prove the script works (three test files and the one-device tests,
#              notebook 00, a small fl benchmark without Flower): under a minute on the 2-core CPU machine
#
# Works from a copied working tree: uses ./.venv/bin/python when it imports jax, else python3 (or $PYTHON)
# with the tree on PYTHONPATH. Logs go to DIR (default build/device-check); the RESULT lines and
# backend.info() are printed again at the end. Exit status 1 if a section failed.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
QUICK=0
OUT="$ROOT/build/device-check"
SECTIONS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --out) OUT=$2; shift ;;
    info|tests|notebooks|bench) SECTIONS+=("$1") ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "device_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#SECTIONS[@]} -eq 0 ] && SECTIONS=(info tests notebooks bench)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/*.log  # the summary below reads only this run's logs

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for candidate in "$ROOT/.venv/bin/python" python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import jax" 2>/dev/null; then
      PY=$candidate
      break
    fi
  done
fi
if [ -z "$PY" ]; then
  echo "device_check: no python with jax found (tried .venv/bin/python, python3, python; set PYTHON=...)" >&2
  exit 2
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
FAILED=()
SKIPPED=()

has() { "$PY" -c "import $1" 2>/dev/null; }

section() {  # section NAME COMMAND...: run, log to $OUT/NAME.log, remember failures
  local name=$1; shift
  echo "=== $name: $*"
  local start=$SECONDS
  "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc after $((SECONDS - start)) s"
  [ "$rc" -eq 0 ] || FAILED+=("$name (exit $rc, log $OUT/$name.log)")
}

info() {
  "$PY" - <<'EOF'
import jax
from mlsys_core import backend

backend.setup()
print("python", __import__("sys").version.split()[0], "jax", jax.__version__, "default backend", jax.default_backend())
print("devices:", jax.devices())
print(backend.info())
EOF
}

echo "device_check: python $PY, out $OUT, sections ${SECTIONS[*]}$([ $QUICK = 1 ] && echo ' (quick)')"
for s in "${SECTIONS[@]}"; do
  case "$s" in
    info) section info info ;;
    tests)
      if ! has pytest; then SKIPPED+=("tests: pytest not importable"); continue; fi
      if [ $QUICK = 1 ]; then
        section tests "$PY" -m pytest -q -p no:cacheprovider tests/test_backend.py tests/test_validate.py \
          tests/test_viz_widgets.py
      else
        # test_colab_cell pip-installs the checkout into a fresh virtualenv, test_browser needs chromium
        section tests "$PY" -m pytest -q -p no:cacheprovider tests --ignore=tests/test_colab_cell.py \
          --ignore=tests/test_browser.py
      fi
      section one-device "$PY" -m pytest -q -p no:cacheprovider tests/test_one_device.py ;;
    notebooks)
      if ! has nbclient || ! has ipykernel; then SKIPPED+=("notebooks: nbclient/ipykernel not importable"); continue; fi
      if [ $QUICK = 1 ]; then  # one notebook, executed to a copy (the report needs all of them)
        section notebooks "$PY" -m nbconvert --to notebook --execute --output-dir "$OUT/notebooks" \
          notebooks/00_start_here.ipynb
      else
        section notebooks "$PY" -m mlsys_core.report notebooks --out "$OUT/notebooks"
      fi ;;
    bench)
      if [ $QUICK = 1 ]; then
        # fl only: sharding's transform-exactness part alone takes minutes
        section bench-fl "$PY" benchmarks/fl.py --clients 50 --repeats 1 --devices 20000 --goal 100 --no-flower
      else
        if has flwr; then section bench-fl "$PY" benchmarks/fl.py
        else
          SKIPPED+=("bench-fl's Flower round: flwr (bench extra) not importable")
          section bench-fl "$PY" benchmarks/fl.py --no-flower
        fi
        section bench-sharding "$PY" benchmarks/sharding.py
        if has numba; then section bench-tictac "$PY" benchmarks/tictac.py
        else SKIPPED+=("bench-tictac: numba not importable"); fi
        if has libcachesim && has kahypar; then section bench-bandana "$PY" benchmarks/bandana.py
        else SKIPPED+=("bench-bandana: libcachesim/kahypar (bench extra) not importable"); fi
      fi ;;
  esac
done

echo
echo "=== summary ($OUT)"
grep -h "^RESULT" "$OUT"/bench-*.log 2>/dev/null || echo "(no RESULT lines)"
[ -f "$OUT/notebooks.log" ] && grep -h -E "^(wrote|FAILED|\[NbConvertApp\] Writing)" "$OUT/notebooks.log"
[ -f "$OUT/info.log" ] && tail -n 1 "$OUT/info.log"
for s in "${SKIPPED[@]+"${SKIPPED[@]}"}"; do echo "skipped: $s"; done
for f in "${FAILED[@]+"${FAILED[@]}"}"; do echo "FAILED: $f"; done
[ ${#FAILED[@]} -eq 0 ]
