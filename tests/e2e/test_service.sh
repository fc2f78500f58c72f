# Installs this build into a staging prefix, builds examples/embed/service.c against the
# *installed* library with nothing but `pkg-config --cflags --libs assay`, and drives it
# over loopback: many clients at once, clients that reset mid-trace, send garbage or a
# line over the limit; SIGHUP reloads; SIGTERM drains. On the plain build the service
# also runs under valgrind.
. "$(dirname "$0")/lib.sh"
B=${ASSAY_BUILD:-build}
extra=""
case "$B" in *asan*) extra="-fsanitize=address,undefined" ;; esac
STAGE=$TMP/stage
P=$STAGE/usr/local
# -o all: install what this build made, never rebuild it with other flags
make -s --no-print-directory -o all install BUILD="$B" DESTDIR="$STAGE" PREFIX=/usr/local >"$TMP/install.log" 2>&1
check "make install DESTDIR=… PREFIX=… succeeds" 0 $?
missing=""
for f in bin/assay lib/libassay.a lib/libassay.so lib/libassay.so.0 include/assay.h lib/pkgconfig/assay.pc \
    share/assay/plugins/query_diversity.lua share/assay/plugins/lib/trace.lua share/assay/plugins/llm/llm_judge.lua; do
    [ -e "$P/$f" ] || missing="$missing $f"
done
check "it installs the binary, both libraries, the header, assay.pc and the plugins" "" "$missing"
check "the soname carries the major version" "libassay.so.0" \
    "$(readelf -d "$P/lib/libassay.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
check "only assay_* symbols are exported" "" \
    "$(nm -D --defined-only "$P/lib/libassay.so" | awk '{print $3}' | grep -v '^assay_' | head -3)"
check "the installed assay runs" "assay 0.1.0" "$("$P/bin/assay" --version 2>&1 | cut -d' ' -f1,2)"

PC="env PKG_CONFIG_PATH=$P/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$STAGE pkg-config"
# shellcheck disable=SC2046,SC2086
(cd "$TMP" && cc -Wall -Wextra -Werror $extra "$OLDPWD/examples/embed/service.c" -o service \
    $($PC --cflags --libs assay)) 2>"$TMP/cc"
check "examples/embed/service.c builds with pkg-config against the installed library" 0 $?
export LD_LIBRARY_PATH="$P/lib"
check "and links the installed libassay.so.0" 1 "$(ldd "$TMP/service" | grep -c "$P/lib/libassay.so.0")"

# `make` then `make install PREFIX=/usr`: what embeds the prefix is made again for it (before:
# assay.pc said /usr/local and the binaries looked in /usr/local/share); and an embedding
# program in thread mode needs no libuv headers and finds the shipped helpers installed
# beside the library (require "trace") with no set-up. Built apart from this build, so that
# the build under test is not changed; on the plain build only (a minute of compiling).
case "$B" in
*asan*) ok "a real install into a new prefix is tested on the plain build" ;;
*)
    IB=$TMP/ib
    IP=$TMP/prefix
    make -s --no-print-directory -j 2 BUILD="$IB" OPT=-O0 PREFIX=/usr/local "$IB/assay" "$IB/assay.pc" >/dev/null 2>&1
    make -s --no-print-directory -j 2 install BUILD="$IB" OPT=-O0 PREFIX="$IP" >"$TMP/install2.log" 2>&1
    check "make install PREFIX=… after a build for another prefix succeeds" 0 $?
    check "assay.pc names the prefix installed to" "prefix=$IP" "$(head -1 "$IP/lib/pkgconfig/assay.pc")"
    check "the installed binary lists the installed plugins" 5 "$("$IP/bin/assay" list 2>/dev/null | grep -c 'scope=')"
    mkdir -p "$TMP/tm"
    cat >"$TMP/tm/needs_trace.lua" <<'EOF'
local trace = require("trace") -- a shipped helper, from the installed share/assay/plugins/lib
return { name = "needs_trace", evaluate = function(t) return { score = 1, label = trace.text(t.output) } end }
EOF
    cat >"$TMP/tm/thread_mode.c" <<'EOF'
/* thread mode: no <uv.h> anywhere */
#include <assay.h>
#include <stdio.h>
#include <string.h>
static void on_result(assay_host *host, const assay_result *result, void *ctx) {
    (void)host, (void)ctx;
    size_t len = 0;
    const char *text = assay_result_jsonl(result, &len);
    fwrite(text, 1, len, stdout);
}
int main(int argc, char **argv) {
    assay_options *o = assay_options_new();
    assay_options_add_plugin_path(o, argv[1]);
    assay_options_set_record_timing(o, 0);
    assay_host *host;
    assay_error err;
    if (assay_host_new(&host, NULL, o, on_result, NULL, &err) != ASSAY_OK) { fprintf(stderr, "%s\n", err.message); return 2; }
    assay_options_free(o);
    const char *line = "{\"id\":\"t\",\"output\":\"hello\"}";
    assay_host_submit(host, line, strlen(line), "argv", 1, NULL);
    assay_host_close(host, NULL);
    (void)argc;
    return 0;
}
EOF
    # shellcheck disable=SC2046
    cc -std=c11 -Wall -Wextra -Werror "$TMP/tm/thread_mode.c" -o "$TMP/tm/thread_mode" \
        $(PKG_CONFIG_PATH="$IP/lib/pkgconfig" pkg-config --cflags --libs assay) 2>"$TMP/tm/cc"
    check "a thread-mode program builds" "0 " "$? $(head -3 "$TMP/tm/cc")"
    # shellcheck disable=SC2046
    check "and assay.h pulls in none of libuv's headers" 0 "$(cc -E "$TMP/tm/thread_mode.c" \
        $(PKG_CONFIG_PATH="$IP/lib/pkgconfig" pkg-config --cflags assay) | grep -c '/uv\.h"\|/uv/')"
    LD_LIBRARY_PATH="$IP/lib" "$TMP/tm/thread_mode" "$TMP/tm/needs_trace.lua" >"$TMP/tm/out" 2>&1
    check "and runs a plugin that requires a shipped helper, with no lib dir set" \
        '{"trace_id":"t","evaluator":"needs_trace","step":null,"score":1,"pass":null,"label":"hello","details":null,"error":null,"ms":null}' \
        "$(cat "$TMP/tm/out")"
    ;;
esac

"$ASSAY" run --no-timing -j 2 -e "$P/share/assay/plugins" examples/traces/deep-research.jsonl >"$TMP/expected" 2>/dev/null

# start_service OUTFILE ARGS...: runs it in the background, sets SVC (pid) and PORT
start_service() {
    out=$1; shift
    "$@" >"$out" 2>"$out.err" &
    SVC=$!
    for _ in $(seq 100); do grep -q listening "$out" 2>/dev/null && break; sleep 0.1; done
    PORT=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$out")
}
# report FILE: turns the client driver's lines into checks
report() {
    while IFS= read -r line; do
        case "$line" in
        "ok "*) ok "${line#ok }" ;;
        *) not_ok "${line#not ok }" ;;
        esac
    done <"$1"
}
MAXLINE=1048576
start_service "$TMP/svc1" "$TMP/service" -e "$P/share/assay/plugins" -j 2 --port 0 --max-line $MAXLINE --no-timing
python3 tests/e2e/service_clients.py all "$PORT" examples/traces/deep-research.jsonl "$TMP/expected" $MAXLINE >"$TMP/r1" 2>&1
check "the client driver ran" 0 $?
report "$TMP/r1"
python3 tests/e2e/service_clients.py drain "$PORT" examples/traces/deep-research.jsonl "$TMP/expected" $MAXLINE $SVC >"$TMP/r2" 2>&1
report "$TMP/r2"
wait $SVC
check "SIGTERM: the service drains and exits 0" 0 $?

# hot reload on SIGHUP
mkdir -p "$TMP/ev"
version() { printf 'return { name = "ver", evaluate = function(t) return { label = "%s" } end }\n' "$1" >"$TMP/ev/ver.lua"; }
ask() { printf '{"id":"r"}\n' | python3 -c "
import socket,sys
s=socket.create_connection(('127.0.0.1',$PORT)); s.sendall(sys.stdin.buffer.read()); s.shutdown(socket.SHUT_WR)
d=b''
while True:
    x=s.recv(4096)
    if not x: break
    d+=x
print(d.decode().split('\"label\":')[1].split(',')[0])"; }
wait_log() { for _ in $(seq 100); do grep -q "$1" "$2" && return 0; sleep 0.05; done; return 1; }
version v1
start_service "$TMP/svc2" "$TMP/service" -e "$TMP/ev" -j 1 --port 0
check "before the reload: v1" '"v1"' "$(ask)"
version v2
kill -HUP $SVC
wait_log "plugins reloaded" "$TMP/svc2.err"
check "SIGHUP reloads the plugins" '"v2"' "$(ask)"
printf 'return { name = "ver" }\n' >"$TMP/ev/ver.lua"
kill -HUP $SVC
wait_log "reload failed" "$TMP/svc2.err"
check_contains "a broken plugin is refused with its file named" "$TMP/svc2.err" "reload failed, keeping the loaded plugins: $TMP/ev/ver.lua"
check "and the loaded plugins keep answering" '"v2"' "$(ask)"
kill -TERM $SVC
wait $SVC

if [ -z "$extra" ] && command -v valgrind >/dev/null; then
    start_service "$TMP/svc3" valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible \
        --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
        "$TMP/service" -e "$P/share/assay/plugins" -j 2 --port 0 --max-line $MAXLINE --no-timing
    python3 tests/e2e/service_clients.py light "$PORT" examples/traces/deep-research.jsonl "$TMP/expected" $MAXLINE >"$TMP/r3" 2>&1
    report "$TMP/r3"
    kill -TERM $SVC
    wait $SVC
    check "under valgrind: no leaks, no memory errors" 0 $?
fi
done_testing
