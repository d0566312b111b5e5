#!/usr/bin/env bash
# Runs every fuzz target (or those named) for a fixed time each, one after the other.
#
#   fuzz/run.sh SECONDS [TARGET...]
#
# Works on stable Rust: cargo-fuzz needs nightly flags (-Zsanitizer, -Cpasses=sancov), which
# RUSTC_BOOTSTRAP=1 unlocks. Installs cargo-fuzz if it is missing (about a minute). New corpus
# entries go to fuzz/corpus/<target> (not committed); a crash stops the run with a non-zero
# exit and leaves its input in fuzz/artifacts/<target>/.
set -euo pipefail

seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
cd "$(dirname "$0")"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(open_value open_header claims_decode roundtrip)
fi

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# Optimized, but with debug assertions and overflow checks (-a); one build for all targets,
# which `run` below finds up to date.
flags=(-O -a --target-dir "$PWD/target/asserts")
cargo fuzz build "${flags[@]}"
mkdir -p artifacts
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    log="artifacts/run-$target.log"
    echo "== $target: ${seconds}s (log: fuzz/$log)"
    if ! cargo fuzz run "${flags[@]}" "$target" "$PWD/corpus/$target" "$PWD/seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "== $target FAILED; reproducer in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$log"
done
echo "== all targets ran ${seconds}s without a finding"
