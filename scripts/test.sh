#!/usr/bin/env bash
# The test suite: real models on real audio. Installs the models it needs first, so no test
# ever skips for a missing model.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
build_release
need_clients_venv
"$QS" models fetch --model base --model tiny.en --model speaker --model onnxruntime --model segmentation --model e5 --model minilm --model use
cargo test --release --locked -- "$@"
bash scripts/e2e.sh
