# The layout of docs/architecture.md: no include cycle between the folders of host/ and
# sandbox/ (scripts/check_layout.py), and the checker finds one when there is.
. "$(dirname "$0")/lib.sh"
python3 scripts/check_layout.py >"$TMP/layout" 2>&1
check "no include cycle between folders" 0 $?
check_contains "host/base is a leaf" "$TMP/layout" "host/base    -> (nothing)"
check_contains "the CLI sees the library only through assay.h and the base layer" "$TMP/layout" "host/cli     -> host, host/base"
check_contains "the sandbox knows nothing of the host but the base layer" "$TMP/layout" "sandbox      -> host/base"
# a copy of the tree with one include added back: sandbox -> host closes a cycle
mkdir -p "$TMP/tree"
cp -r host sandbox "$TMP/tree/"
printf '#include "../host/assay.h"\n' >>"$TMP/tree/sandbox/lazy.c"
python3 scripts/check_layout.py "$TMP/tree" >"$TMP/cycle" 2>&1
check "a cycle fails the check" 1 $?
check_contains "and is named" "$TMP/cycle" "include cycle between folders: host -> sandbox -> host"
done_testing
