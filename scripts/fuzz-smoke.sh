#!/usr/bin/env bash
# A short fuzzing pass over every cargo-fuzz target in fuzz/ (koogate-protocol's parsers and signature
# checks): builds them once, then runs each for FUZZ_SECONDS seconds (default 15). Exits non-zero if a
# target finds a crash; the input is kept under fuzz/artifacts/<target>/ and the log's tail is printed.
#
# cargo-fuzz needs a nightly toolchain. Without `cargo +nightly` this script says so and exits 0, so it
# can run anywhere; it installs cargo-fuzz when missing (and skips the same way if that fails).
#
# Settings (environment):
#   FUZZ_SECONDS    seconds per target (default 15)
#   FUZZ_TARGETS    space-separated subset of targets (default: all, from `cargo fuzz list`)
#   FUZZ_SANITIZER  none (default) or address. The protocol crate has no unsafe code, and without ASan
#                   libFuzzer runs 3-6 times as many inputs in the same time (measured on 2 cores).
#
# One target by hand, from the repository root:
#   cargo +nightly fuzz run --fuzz-dir fuzz --sanitizer none callback_verify fuzz/corpus/callback_verify \
#     fuzz/seeds/callback_verify -- -max_total_time=60 -dict=fuzz/dicts/callback_verify.dict
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-15}"
FUZZ_SANITIZER="${FUZZ_SANITIZER:-none}"

skip() {
  echo "fuzz-smoke: SKIPPED: $*" >&2
  exit 0
}

if ! command -v cargo >/dev/null 2>&1 || ! cargo +nightly --version >/dev/null 2>&1; then
  skip "no nightly toolchain ('cargo +nightly' is not available); install one with 'rustup toolchain install nightly'"
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz-smoke: cargo-fuzz is missing, installing it"
  cargo install cargo-fuzz --locked || skip "'cargo install cargo-fuzz --locked' failed"
fi
echo "fuzz-smoke: $(cargo +nightly --version), $(cargo +nightly fuzz --version)"

# cargo-fuzz has no --locked flag, so fetch first with --locked: this fails if fuzz/Cargo.lock is missing
# or out of date, and the build below then resolves to exactly the locked versions.
cargo +nightly fetch --locked --manifest-path fuzz/Cargo.toml

fuzz=(cargo +nightly fuzz)
build_flags=(--fuzz-dir fuzz --sanitizer "$FUZZ_SANITIZER")
if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  mapfile -t targets < <("${fuzz[@]}" list --fuzz-dir fuzz)
fi
if [ "${#targets[@]}" -eq 0 ]; then
  echo "fuzz-smoke: no fuzz targets found in fuzz/" >&2
  exit 1
fi

start=$SECONDS
echo "fuzz-smoke: building ${#targets[@]} targets (sanitizer: $FUZZ_SANITIZER)"
"${fuzz[@]}" build "${build_flags[@]}"
echo "fuzz-smoke: built in $((SECONDS - start)) s"

logs=fuzz/target/smoke-logs
mkdir -p "$logs"
failed=()
for target in "${targets[@]}"; do
  # New inputs go to the first corpus directory (fuzz/corpus/, git-ignored); the committed seeds are
  # only read.
  corpora=("fuzz/corpus/$target")
  mkdir -p "${corpora[0]}"
  if [ -d "fuzz/seeds/$target" ]; then
    corpora+=("fuzz/seeds/$target")
  fi
  # -timeout: an input taking seconds is a bug in a parser of request-sized data.
  libfuzzer_flags=(-max_total_time="$FUZZ_SECONDS" -timeout=10)
  if [ -f "fuzz/dicts/$target.dict" ]; then
    libfuzzer_flags+=(-dict="fuzz/dicts/$target.dict")
  fi
  log="$logs/$target.log"
  if "${fuzz[@]}" run "${build_flags[@]}" "$target" "${corpora[@]}" -- "${libfuzzer_flags[@]}" >"$log" 2>&1; then
    # libFuzzer's closing line: "Done N runs in S second(s)".
    echo "fuzz-smoke: $target: ok, $(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1)"
  else
    echo "fuzz-smoke: $target: FAILED (full log: $log)"
    # The panic message (or sanitizer report) and where libFuzzer saved the input; the log's end when
    # there is neither (a build or start-up failure).
    { grep -m 1 -A 2 -E 'panicked at|ERROR: AddressSanitizer' "$log" || true; } | sed 's/^/    /'
    if ! grep -E '^SUMMARY|Test unit written to' "$log" | sed 's/^/    /'; then
      tail -n 20 "$log" | sed 's/^/    /'
    fi
    failed+=("$target")
  fi
done

echo "fuzz-smoke: finished in $((SECONDS - start)) s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz-smoke: crashes in: ${failed[*]} (inputs under fuzz/artifacts/<target>/; reproduce with" \
    "'cargo +nightly fuzz run --fuzz-dir fuzz --sanitizer $FUZZ_SANITIZER <target> <input>')" >&2
  exit 1
fi
