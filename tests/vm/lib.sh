# shellcheck shell=sh
# Helpers for VM scenarios (sourced from /lib/vmtest.sh inside the VM).

# run_test BIN TEST [extra args]: run one Rust test by exact name and insist
# that it ran and passed (a filter matching nothing would "pass" silently).
run_test() {
    bin=$1
    name=$2
    shift 2
    out=$("/tests/$bin" --exact "$name" --nocapture "$@" 2>&1)
    rc=$?
    echo "$out"
    [ "$rc" -eq 0 ] || return 1
    echo "$out" | grep -q "test result: ok. 1 passed" || { echo "vmtest: $name did not run"; return 1; }
}
