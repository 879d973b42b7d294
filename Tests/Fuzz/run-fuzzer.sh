#!/usr/bin/env bash
# Fuzz the request reader and dispatcher, the import parser, or the decoding of upstream replies
# (get_token and business), with libFuzzer and AddressSanitizer.
# usage: Tests/Fuzz/run-fuzzer.sh request|import|upstream|proxy [SECONDS]     (default 60)
# A crash leaves its input in .build-fuzz/artifacts/; add it to Tests/Fuzz/corpus/<target>/ so
# `swift test` replays it from then on (FuzzReplayTests).
set -euo pipefail
target=${1:?usage: run-fuzzer.sh request|import|upstream|proxy [SECONDS]}
seconds=${2:-60}
case "$target" in request|import|upstream|proxy) ;; *) echo "target must be request, import, upstream or proxy" >&2; exit 64 ;; esac
cd "$(dirname "$0")/../.."
swift build --product sobot-broker-fuzz --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -parse-as-library
work=.build-fuzz/corpus-$target
mkdir -p "$work" .build-fuzz/artifacts
cp -n Tests/Fuzz/corpus/"$target"/* "$work"/ 2>/dev/null || true
# -detect_leaks=0: process-lifetime singletons (NIO's thread pool, the dispatcher set up on the first
# input) would be reported as leaks of whichever input first touched them. ASan still catches memory errors.
ASAN_OPTIONS=detect_leaks=0 SOBOT_FUZZ_TARGET=$target .build-fuzz/debug/sobot-broker-fuzz "$work" \
  -max_total_time="$seconds" -max_len=4096 -timeout=10 -detect_leaks=0 \
  -artifact_prefix=.build-fuzz/artifacts/ -print_final_stats=1
