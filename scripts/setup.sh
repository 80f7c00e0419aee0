#!/usr/bin/env bash
# Set up everything the playground needs on a Debian machine; safe to run again.
#   1. Debian packages (real data + the browser for tests), when we may install them;
#   2. a virtual environment in .venv with the project and its pinned torch/torchvision.
# Environment: PLAYGROUND_SKIP_APT=1 skips step 1; PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."

# wordnet-base: WordNet 3.0 for the fusion knowledge graph
# open3d (playground.pointcloud) loads libusb, libudev, libGL/libEGL and libX11 on import, even headless
APT_PACKAGES=(dataset-fashion-mnist wordnet-base chromium fonts-liberation libusb-1.0-0 libudev1 libgl1 libegl1 libx11-6)
PYTHON="${PYTHON:-python3}"

say() { printf '[setup] %s\n' "$*" >&2; }

missing_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  echo "${missing[@]:-}"
}

install_debian_packages() {
  [[ "${PLAYGROUND_SKIP_APT:-0}" == 1 ]] && { say "skipping Debian packages (PLAYGROUND_SKIP_APT=1)"; return; }
  if ! command -v dpkg >/dev/null || ! command -v apt-get >/dev/null; then
    say "not a Debian/Ubuntu system: install Fashion-MNIST yourself and pass --set data_root=DIR (torchvision layout),"
    say "or run recipes with --set download=true; browser tests need a Chromium at /usr/bin/chromium."
    return
  fi
  local missing; missing=$(missing_packages "${APT_PACKAGES[@]}")
  [[ -z "$missing" ]] && { say "Debian packages present: ${APT_PACKAGES[*]}"; return; }
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    if sudo -n true 2>/dev/null; then sudo="sudo"; else
      say "cannot install Debian packages without root. Run: sudo apt-get install -y $missing"
      say "continuing: Fashion-MNIST recipes and the browser test will say what is missing."
      return
    fi
  fi
  say "installing Debian packages: $missing"
  $sudo apt-get update -qq || say "apt-get update failed; trying the install anyway"
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null \
    || say "apt-get install failed: install '$missing' by hand (Fashion-MNIST: sudo apt-get install dataset-fashion-mnist)"
}

# uv installs the same pinned set in parallel: about 1 minute on a fresh machine instead of 3.5 with pip.
# It reads pip's settings only through these flags; when it cannot be had or fails, pip does the install.
install_with_uv() {
  .venv/bin/python -m pip install --quiet uv >"$1" 2>&1 || return 1
  local links=()
  for dir in ${PIP_FIND_LINKS:-}; do links+=(--find-links "$dir"); done
  if [[ -n "${PIP_CERT:-}" && -z "${SSL_CERT_FILE:-}" ]]; then export SSL_CERT_FILE="$PIP_CERT"; fi
  UV_NATIVE_TLS=1 .venv/bin/uv pip install --quiet --python .venv/bin/python "${links[@]}" \
    -e ".[dev,text,sweep]" -c constraints.txt >"$1" 2>&1 && return 0
  say "uv could not install the packages ($(tail -n 1 "$1")); trying pip"
  return 1
}

make_venv() {
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    say "Python >= 3.10 is needed; $PYTHON is $("$PYTHON" --version 2>&1). Set PYTHON=/path/to/python3.11 and retry."
    exit 1
  fi
  if [[ ! -x .venv/bin/python ]]; then
    say "creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv || {
      say "could not create a virtual environment: sudo apt-get install python3-venv (Python >= 3.10 needed)"; exit 1; }
  fi
  say "installing the project and its dependencies (torch pinned by constraints.txt)"
  local log; log=$(mktemp)
  if ! install_with_uv "$log" && ! .venv/bin/python -m pip install --quiet -e ".[dev,text,sweep]" -c constraints.txt >"$log" 2>&1; then
    grep -v "is ignored" "$log" >&2
    say "pip install failed (see above); check your network access to the package index"
    exit 1
  fi
  rm -f "$log"
  .venv/bin/python -c "import playground, torch, streamlit; print('[setup] ready: torch', torch.__version__)" >&2
}

install_debian_packages
make_venv
