#!/usr/bin/env bash
# A longer randomised run of every parser of outside data and of the review store's rules
# (the suite runs a few cases each). Bounded: PROPTEST_CASES cases per property (default 2000).
#   scripts/fuzz.sh            # 2000 cases per parser, 200 review sessions
#   PROPTEST_CASES=20000 scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cases="${PROPTEST_CASES:-2000}"
# Decoding and store sessions are slower per case: a tenth of the cases.
slow=$(( cases / 10 > 1 ? cases / 10 : 1 ))
PROPTEST_CASES="$cases" cargo test --release --locked --test parsers_fuzz -- \
    --skip mutated_audio_files_decode_or_fail_cleanly
PROPTEST_CASES="$slow" cargo test --release --locked --test parsers_fuzz -- \
    mutated_audio_files_decode_or_fail_cleanly
PROPTEST_CASES="$slow" cargo test --release --locked --test review_store -- \
    random_review_sessions_keep_the_rules_and_replay_from_the_audit_trail
echo "fuzz: no failures ($cases cases per parser, $slow per audio format and for review sessions)"
