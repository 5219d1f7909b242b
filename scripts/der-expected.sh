#!/usr/bin/env bash
# Regenerates tests/fixtures/der/expected.tsv: pyannote.metrics' DER for every case in cases.tsv.
# Usage: scripts/der-expected.sh [PYTHON]   (PYTHON must have pyannote.metrics installed)
set -euo pipefail
python=${1:-python3}
dir=tests/fixtures/der
{
  printf '# produced by scripts/der-expected.sh with pyannote.metrics %s\n' \
    "$("$python" -c 'import importlib.metadata as m; print(m.version("pyannote.metrics"))')"
  printf '# case\turi\ttotal_s\tmissed_s\tfalse_alarm_s\tconfusion_s\tder\n'
  grep -v '^#' "$dir/cases.tsv" | while IFS=$'\t' read -r case ref hyp uem collar skip; do
    args=(--collar "$collar")
    [[ $uem != - ]] && args+=(--uem "$dir/$uem")
    [[ $skip == true ]] && args+=(--skip-overlap)
    "$python" scripts/check-der-pyannote.py "$dir/$ref" "$dir/$hyp" "${args[@]}" |
      sed "s/^/$case\t/"
  done
} > "$dir/expected.tsv"
