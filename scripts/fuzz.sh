#!/usr/bin/env bash
# make fuzz: run every libFuzzer target (fuzz/fuzz_targets/) for a bounded
# time, growing and then minimising its corpus in fuzz/corpus/. A crash is
# copied into the corpus, where tests/integration/fuzz_corpus.rs replays it
# on every `make test` until it is fixed.
#
#   FUZZ_SECONDS=60 make fuzz        # seconds per target (default 60)
#   FUZZ_TARGETS="zone_file" make fuzz
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-"nameserver_request resolver_request upstream_response zone_file web_request"}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz from crates.io"
  cargo install cargo-fuzz --locked
fi
# cargo-fuzz builds with -Z sanitizer flags; this machine's only toolchain
# is stable, which accepts them when told it is bootstrapping.
export RUSTC_BOOTSTRAP=1

failed=0
for target in $targets; do
  corpus=fuzz/corpus/$target
  echo "fuzz: $target for ${seconds}s"
  if ! (cd fuzz && cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1); then
    failed=1
    for crash in fuzz/artifacts/"$target"/*; do
      [ -f "$crash" ] || continue
      cp "$crash" "$corpus/regression-$(basename "$crash")"
      echo "fuzz: $target found $(basename "$crash"); kept as a regression input in $corpus"
    done
  fi
  (cd fuzz && cargo fuzz cmin "$target" "corpus/$target" >/dev/null 2>&1) || true
  echo "fuzz: $target corpus now $(ls "$corpus" | wc -l) inputs"
done
exit $failed
