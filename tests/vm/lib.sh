# shellcheck shell=sh
# Helpers for VM scenarios (sourced from /lib/vmtest.sh inside the VM).

# run_test BIN TEST [extra args]: run one Rust test by exact name and insist
# that it ran and passed (a filter matching nothing would "pass" silently).
# POSIX sh has no local variables: the names are prefixed so that a
# scenario's own `rc` survives the call.
run_test() {
    _rt_bin=$1
    _rt_name=$2
    shift 2
    _rt_out=$("/tests/$_rt_bin" --exact "$_rt_name" --nocapture "$@" 2>&1)
    _rt_rc=$?
    echo "$_rt_out"
    [ "$_rt_rc" -eq 0 ] || return 1
    echo "$_rt_out" | grep -q "test result: ok. 1 passed" || { echo "vmtest: $_rt_name did not run"; return 1; }
}
