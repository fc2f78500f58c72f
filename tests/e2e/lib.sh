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
# run_measured STDOUT_FILE COMMAND...: runs it with its standard output in STDOUT_FILE (stderr
# dropped) and sets rc (its exit status) and rss (its peak resident memory in MB).
run_measured() {
    out_file=$1
    shift
    set -- $(python3 -c '
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:], stdout=open(sys.argv[1], "w"), stderr=subprocess.DEVNULL)
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)' "$out_file" "$@")
    rc=$1 rss=$2
}
