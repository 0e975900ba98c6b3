#!/bin/sh
# make fuzz: runs each libFuzzer target in turn for SECONDS on its corpus and
# prints one summary line per target from libFuzzer's final statistics.
#
#   tests/fuzz/run.sh SECONDS BINARY...
#
# The checked-in corpus (tests/fuzz/corpus/NAME/) is only read; inputs the
# run finds go to build/fuzz/work/NAME/, crashes to build/fuzz/artifacts/,
# the whole output to build/fuzz/NAME.log. FUZZ_ARGS adds libFuzzer options
# (e.g. FUZZ_ARGS=-runs=10000000 for a fixed count instead of a time budget).
# Exits non-zero when any target found a crash, leak or timeout.
set -u
secs=$1
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
fail=0
for bin in "$@"; do
	name=$(basename "$bin")
	work="$root/build/fuzz/work/$name"
	log="$root/build/fuzz/$name.log"
	mkdir -p "$work" "$root/build/fuzz/artifacts"
	# shellcheck disable=SC2086
	nice "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 \
		-artifact_prefix="$root/build/fuzz/artifacts/$name-" ${FUZZ_ARGS:-} \
		"$work" "$root/tests/fuzz/corpus/$name" >"$log" 2>&1
	rc=$?
	last=$(grep -aE '^#[0-9]+' "$log" | tail -n 1)
	cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
	verdict=ok
	if [ "$rc" != 0 ]; then
		verdict="FAILED (exit $rc, see $log and build/fuzz/artifacts/)"
		fail=1
	fi
	echo "fuzz: $name: ${execs:-?} executions in ${secs}s, ${rate:-?} exec/s, cov ${cov:-?}," \
		"ft ${ft:-?}, corpus ${corp:-?}, peak rss ${rss:-?} MB: $verdict"
done
exit $fail
