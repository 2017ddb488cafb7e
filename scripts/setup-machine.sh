#!/usr/bin/env bash
# Installs what a bare Debian 12 machine lacks for wgnn: Mesa 25 lavapipe (WebGPU without a GPU, through Dawn),
# Debian's chromium (browser tests), Fashion-MNIST, the fortunes text corpus, and PyTorch with NumPy and ONNX (the
# oracles the GPT and the interop are checked against, run as /usr/bin/python3). Idempotent: quick when everything is
# already there.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need=()
# Mesa 22 (bookworm) gives Dawn no adapter; lavapipe from Mesa >= 25 (bookworm-backports) does.
mesa_ver=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
case "$mesa_ver" in
  2[5-9].*|[3-9][0-9].*) ;;
  *) need+=(mesa) ;;
esac
dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q 'install ok installed' || need+=(chromium)
dpkg-query -W -f='${Status}' dataset-fashion-mnist 2>/dev/null | grep -q 'install ok installed' || need+=(fashion)
dpkg-query -W -f='${Status}' libvulkan1 2>/dev/null | grep -q 'install ok installed' || need+=(loader)
# Debian packages installed from bookworm itself, checked by name. OpenBLAS: Debian's torch calls the system BLAS,
# and the reference one makes a d=128 T=128 batch-32 GPT step ~8 s instead of ~0.5 s (scripts/gpt_torch.py).
plain=()
for pkg in fortunes python3-torch python3-numpy python3-onnx libopenblas0-pthread; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || plain+=("$pkg")
done
need+=("${plain[@]}")

if [ ${#need[@]} -eq 0 ]; then
  echo "setup-machine: mesa-vulkan-drivers $mesa_ver, chromium, dataset-fashion-mnist, fortunes, python3-torch, python3-numpy, python3-onnx, libopenblas0-pthread: all present"
  exit 0
fi
echo "setup-machine: installing: ${need[*]}"

if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    # deb822 style, as Debian's images ship it
    $SUDO tee /etc/apt/sources.list.d/backports.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  else
    echo 'deb http://deb.debian.org/debian bookworm-backports main' | $SUDO tee /etc/apt/sources.list.d/backports.list >/dev/null
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# A third-party source that cannot be reached must not stop the install: update what can be updated.
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1
$SUDO apt-get install -y -qq --no-install-recommends chromium dataset-fashion-mnist fortunes python3-torch python3-numpy python3-onnx libopenblas0-pthread
echo "setup-machine: mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) installed"
