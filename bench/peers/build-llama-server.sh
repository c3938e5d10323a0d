#!/usr/bin/env bash
# Builds llama.cpp's own llama-server, the peer the engine bench measures against, from the llama.cpp
# source that node-llama-cpp bundles (so both sides run the same llama.cpp), or from a source tree given
# by path. Never downloads anything. Skips when the binary is already built.
#
#   bench/peers/build-llama-server.sh            # from node_modules/node-llama-cpp/llama/gitRelease.bundle
#   bench/peers/build-llama-server.sh ~/llama.cpp # from a checkout you already have
#
# Output: .cache/peers/llama.cpp/build/bin/llama-server (the path bench/engine-peer.ts looks at) and
# llama-batched-bench beside it (bench/engine-steps.ts: llama.cpp decoding parallel sequences with nothing around it).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="$root/.cache/peers/llama.cpp"
bin="$dest/build/bin/llama-server"
batched="$dest/build/bin/llama-batched-bench"
jobs="${JOBS:-2}"

if [[ -x "$bin" && -x "$batched" ]]; then
  echo "llama-server already built: $bin"
  exit 0
fi

if [[ $# -ge 1 ]]; then
  src="$(cd "$1" && pwd)"
  if [[ ! -f "$src/CMakeLists.txt" ]]; then
    echo "not a llama.cpp source tree (no CMakeLists.txt): $src" >&2
    exit 2
  fi
  if [[ "$src" != "$dest" ]]; then
    mkdir -p "$(dirname "$dest")"
    rm -rf "$dest"
    cp -a "$src" "$dest"
    rm -rf "$dest/build"
  fi
else
  bundle="$root/node_modules/node-llama-cpp/llama/gitRelease.bundle"
  if [[ ! -f "$bundle" ]]; then
    echo "no llama.cpp source: $bundle is missing; give a source tree by path" >&2
    exit 2
  fi
  if [[ ! -f "$dest/CMakeLists.txt" ]]; then
    mkdir -p "$(dirname "$dest")"
    rm -rf "$dest"
    git -c advice.detachedHead=false clone --quiet "$bundle" "$dest"
  fi
fi

cd "$dest"
echo "building llama-server in $dest ($(git rev-parse --short HEAD 2>/dev/null || echo 'not a git tree'), -j$jobs)"
nice -n 19 cmake -B build -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF >/dev/null
nice -n 19 cmake --build build --config Release --target llama-server llama-batched-bench -j"$jobs"
echo "built: $bin"
echo "built: $batched"
