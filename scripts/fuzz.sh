#!/bin/bash
# Run each fuzz target for SECONDS: scripts/fuzz.sh SECONDS TARGET...
# Seeds come from tests/fuzz/corpus/TARGET (read only); new inputs and any
# crash go under build/fuzz/. Prints one row per target (executions, corpus
# size) into build/fuzz/report.md and fails naming the input that crashed.
set -euo pipefail
secs=$1
shift
# address (the default) or none: FUZZ_SANITIZER=none builds faster.
san=${FUZZ_SANITIZER:-address}
out=build/fuzz
mkdir -p "$out"
cargo +nightly fuzz build -O -s "$san" 2>&1 | tail -n 3
report=$out/report.md
{
	echo "## Fuzzing"
	echo
	echo "\`make fuzz\` (cargo-fuzz, libFuzzer, sanitizer: ${san}, nightly), each target for ${secs} s on $(nproc) cores, $(date -u +%Y-%m-%d):"
	echo
	echo "| target | seconds | executions | exec/s | corpus entries | result |"
	echo "|---|---:|---:|---:|---:|---|"
} >"$report"
failed=0
for t in "$@"; do
	mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
	log=$out/$t.log
	rc=0
	cargo +nightly fuzz run -O -s "$san" "$t" "$out/corpus/$t" "tests/fuzz/corpus/$t" -- \
		-max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$out/artifacts/$t/" >"$log" 2>&1 || rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	entries=$(find "$out/corpus/$t" -type f | wc -l)
	if [ "$rc" -eq 0 ]; then
		result=ok
	else
		result="crash (exit $rc)"
		failed=1
		echo "fuzz: target $t failed; its log is $log, the input:" >&2
		ls "$out/artifacts/$t"/* >&2 2>/dev/null || tail -n 30 "$log" >&2
	fi
	echo "| $t | $secs | ${runs:-?} | ${speed:-?} | $entries | $result |" >>"$report"
	echo "fuzz $t: ${runs:-?} executions in ${secs} s, $result"
done
exit $failed
