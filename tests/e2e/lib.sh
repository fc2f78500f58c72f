# Helpers for the end-to-end tests: TAP output and assertions. Sourced, not run.
# ASSAY_BIN is the binary under test (tests/run.sh sets it).
ASSAY=${ASSAY_BIN:-build/assay}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for line in "$@"; do echo "#   $line"; done; }
# check DESCRIPTION EXPECTED ACTUAL
check() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected: $2" "got:      $3"; fi
}
# check_contains DESCRIPTION FILE TEXT
check_contains() {
    if grep -qF -- "$3" "$2"; then ok "$1"; else not_ok "$1" "expected to find: $3" "in: $(head -c 600 "$2")"; fi
}
done_testing() { echo "1..$n"; }
