#!/usr/bin/env bash
# Example Slurm job array: an interview archive split over N nodes, then joined.
#
#   sbatch --array=1-8 scripts/slurm-array.sh /archive/interviews /scratch/$USER/qs
#
# Each array task runs `qualscribe batch --shard K/N` on its slice (a deterministic slice: a file
# stays in its shard when others are added) into its own folder; rerunning a task resumes it.
# When all tasks are done, join them and find themes across the whole archive with a dependent job:
#
#   sbatch --dependency=afterany:<array job id> --wrap \
#     "qualscribe merge /scratch/$USER/qs/shard-* -o /scratch/$USER/qs/all"
#
# Models must be installed once beforehand where the nodes can read them (nodes usually have no
# internet): `QUALSCRIBE_MODELS=/shared/qualscribe-models qualscribe models fetch --model base
# --model speaker --model e5`.
#SBATCH --job-name=qualscribe
#SBATCH --cpus-per-task=8
#SBATCH --mem=8G
#SBATCH --time=24:00:00
#SBATCH --output=qualscribe-%A_%a.out
set -euo pipefail
ARCHIVE="${1:?usage: sbatch --array=1-N slurm-array.sh ARCHIVE OUTPUT}"
OUTPUT="${2:?usage: sbatch --array=1-N slurm-array.sh ARCHIVE OUTPUT}"
K="${SLURM_ARRAY_TASK_ID:?run with sbatch --array=1-N}"
N="${SLURM_ARRAY_TASK_COUNT:?run with sbatch --array=1-N}"
export QUALSCRIBE_MODELS="${QUALSCRIBE_MODELS:-$HOME/.cache/qualscribe/models}"
QS="${QUALSCRIBE:-qualscribe}"

# Exit code 1 means some recordings failed (listed in batch-report.tsv); the others are done.
# Jobs and threads are planned from the CPUs Slurm gives the task (4 Whisper threads per file).
"$QS" batch "$ARCHIVE" --shard "$K/$N" -o "$OUTPUT/shard-$K" \
    --log-json "$OUTPUT/shard-$K.jsonl" --quiet \
    || [ $? -eq 1 ]
