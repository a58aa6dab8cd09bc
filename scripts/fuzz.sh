#!/usr/bin/env bash
# Fuzzes the sans-IO protocol code (fuzz/: PROXY v1 and v2 headers, the DATA decoder, the
# session state machine with its command parser, the MAIL/RCPT address and parameter
# parser, the SASL decoders).
#
#   scripts/fuzz.sh [--stable | --libfuzzer] [seconds-per-target] [target...]
#
# With nightly Rust and cargo-fuzz available, each target runs under libFuzzer for the
# given time (default 60 s); otherwise, or with --stable, the stable runner
# (fuzz/examples/replay.rs) replays the corpus and runs seeded mutations of it for that
# time. --libfuzzer fails instead of falling back. Exits non-zero on a failing input and
# prints where it was written (fuzz/artifacts/<target>/).
#
# Environment: FUZZ_INSTALL=1 installs cargo-fuzz when it is missing;
# FUZZ_SANITIZER=address|none (default none: the code under test is safe Rust, and
# without ASan libFuzzer runs about twice as fast); FUZZ_RSS_MB (default 2048).
set -euo pipefail

cd "$(dirname "$0")/.."
ALL=(proxy_v2 proxy_v1 data_decoder session address sasl bdat)
seconds=60
mode=auto
targets=()
for arg in "$@"; do
    case "$arg" in
        --stable) mode=stable ;;
        --libfuzzer) mode=libfuzzer ;;
        -h | --help)
            sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *[!0-9]*) targets+=("$arg") ;;
        *) seconds="$arg" ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")
for t in "${targets[@]}"; do
    case " ${ALL[*]} " in
        *" $t "*) ;;
        *)
            echo "fuzz.sh: unknown target $t (targets: ${ALL[*]})" >&2
            exit 2
            ;;
    esac
done

have_libfuzzer() {
    cargo +nightly --version >/dev/null 2>&1 || return 1
    if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        [ "${FUZZ_INSTALL:-0}" = 1 ] || return 1
        echo "fuzz.sh: installing cargo-fuzz" >&2
        cargo install cargo-fuzz --locked -j 2 >&2 || return 1
    fi
    cargo +nightly fuzz --version >/dev/null 2>&1
}

run_stable() {
    echo "fuzz.sh: stable runner, ${seconds}s per target: ${targets[*]}"
    exec cargo run --quiet --release --manifest-path fuzz/Cargo.toml --example replay -- \
        --seconds "$seconds" "${targets[@]}"
}

if [ "$mode" = stable ]; then
    run_stable
fi
if ! have_libfuzzer; then
    if [ "$mode" = libfuzzer ]; then
        echo "fuzz.sh: nightly Rust or cargo-fuzz is unavailable (FUZZ_INSTALL=1 installs cargo-fuzz)" >&2
        exit 1
    fi
    echo "fuzz.sh: nightly Rust or cargo-fuzz unavailable; using the stable runner" >&2
    run_stable
fi

sanitizer="${FUZZ_SANITIZER:-none}"
flags=(--features libfuzzer --sanitizer "$sanitizer")
echo "fuzz.sh: libFuzzer (sanitizer $sanitizer), ${seconds}s per target: ${targets[*]}"
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo +nightly fuzz build "${flags[@]}"

stamp="$(mktemp)"
trap 'rm -f "$stamp"' EXIT
status=0
for t in "${targets[@]}"; do
    case "$t" in
        proxy_*) dict=fuzz/dict/proxy.dict max_len=4096 ;;
        data_decoder) dict=fuzz/dict/data.dict max_len=8192 ;;
        session) dict=fuzz/dict/smtp.dict max_len=4096 ;;
        address) dict=fuzz/dict/smtp.dict max_len=1024 ;;
        sasl) dict=fuzz/dict/sasl.dict max_len=1024 ;;
        bdat) dict=fuzz/dict/data.dict max_len=4096 ;;
    esac
    # New inputs go to the first (uncommitted) directory; the committed seeds stay small.
    work="fuzz/corpus-work/$t"
    mkdir -p "$work" "fuzz/artifacts/$t"
    dirs=("$work" "fuzz/corpus/$t")
    [ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
    echo "fuzz.sh: $t"
    if ! cargo +nightly fuzz run "${flags[@]}" "$t" "${dirs[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
        -max_len="$max_len" -dict="$dict" -print_final_stats=1; then
        status=1
        echo "fuzz.sh: $t FAILED; reproducer(s):" >&2
        find "fuzz/artifacts/$t" -type f -newer "$stamp" -print >&2
        echo "fuzz.sh: replay on stable with: cargo run --release --manifest-path fuzz/Cargo.toml --example replay -- $t <file>" >&2
    fi
done
exit "$status"
