# The layout of docs/architecture.md: no include cycle between the folders of host/ and
# sandbox/ (scripts/check_layout.py), no function longer than 80 lines
# (scripts/check_functions.py), and each checker finds what it is for.
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

python3 scripts/check_functions.py >"$TMP/functions" 2>&1
check "no function longer than 80 lines" "0 no function longer than 80 lines" "$? $(cat "$TMP/functions")"
# a function of 81 lines, its signature over two lines, is found
{ printf 'static int too_long(int a,\n                    int b) {\n'
  i=0; while [ $i -lt 77 ]; do printf '    a += b;\n'; i=$((i + 1)); done
  printf '    return a;\n}\n'; } >>"$TMP/tree/sandbox/lazy.c"
python3 scripts/check_functions.py "$TMP/tree" >"$TMP/long" 2>&1
check "a long function fails the check" 1 $?
check_contains "and is named with its file and line" "$TMP/long" "too_long is 81 lines"
done_testing
