#!/usr/bin/env bash
# Fills .gl/ (git-ignored) with the GL vendor-neutral dispatch libraries NVIDIA's Vulkan driver needs on the GPU
# machine: its ICD is libGLX_nvidia.so.0, which fails to load without libglvnd ("Could not get 'vkCreateInstance'
# via 'vk_icdGetInstanceProcAddr' for ICD libGLX_nvidia.so.0", then Dawn finds no adapter). ../shared/gpu/pack.sh
# brings only libvulkan1. Usage, from the repository root: bash bench/gpu/pack-gl.sh; then carry '.gl' and
# start the device command with: for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig;
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
mkdir -p .gl /tmp/amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
apt-get $o update >/dev/null
(cd .gl && apt-get $o download libvulkan1 libglvnd0 libglx0 libegl1 libgl1 libopengl0 libgles2 \
  libx11-6 libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 >/dev/null 2>&1)
du -sh .gl
