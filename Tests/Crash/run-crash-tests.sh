#!/usr/bin/env bash
# The long crash runs: kill -9 during `key rotate`, during a large `tenant import` and during refresh
# storms, many times at random moments; after every kill the store must open with every secret
# readable, and nothing half-written. `swift test` runs the same tests once, at a smaller size.
# usage: Tests/Crash/run-crash-tests.sh [ROUNDS] [TENANTS]      (defaults 10 and 100000)
set -euo pipefail
rounds=${1:-10}
tenants=${2:-100000}
cd "$(dirname "$0")/../.."
SOBOT_CRASH_ROUNDS=$rounds SOBOT_CRASH_TENANTS=$tenants swift test --filter CrashTests 2>&1 |
  grep -E 'crash run:|✘|passed after|failed after|error:'
