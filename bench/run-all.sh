#!/usr/bin/env bash
# Runs every benchmark of BENCHMARKS.md and prints the figures; writes bench/pipeline-throughput.svg.
# Not a test and not run by CI. Run it on a quiet machine: the figures are medians of repeated runs
# but a compile next door still shows.
#   bash bench/run-all.sh            (~7 minutes on 2 cores; 1-2 more the first time, to build the
#                                     ReadyToRun pwsh of part 1b, see bench/pwsh-r2r.sh)
# Outputs of each part also land in $BENCH_OUT (default: a temporary directory, printed at the end).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
eval "$(bash .ci/provision)"
cargo build --release --workspace --quiet
out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
bin=target/release

echo "== machine"
echo "nproc: $(nproc); CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
free -h | sed -n 2p
pwsh --version
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

echo; echo "== 1. import (bench/import.sh 15)"
bash bench/import.sh 15 | tee "$out/import.txt"

# The same on a ReadyToRun-compiled pwsh like Microsoft's packages (the global tool's is not),
# built from NuGet on first use into ~/.cache; without NuGet it is skipped, with the reason above.
echo; echo "== 1b. import on a ReadyToRun pwsh (PWSH=\$(bash bench/pwsh-r2r.sh) bash bench/import.sh 15)"
if r2r=$(bash bench/pwsh-r2r.sh); then
  PWSH=$r2r bash bench/import.sh 15 | tee "$out/import-r2r.txt"
else
  echo "skipped: the ReadyToRun pwsh could not be built (reason above)" | tee "$out/import-r2r.txt"
fi

echo; echo "== 2. one keep-alive, warm (bench/pwsh-bench.sh warm.ps1 -Count 2000)"
bash bench/pwsh-bench.sh warm.ps1 -Count 2000 | tee "$out/warm.txt"

echo; echo "== 2b. where a warm single call's time goes (bench/pwsh-bench.sh percall-cost.ps1)"
bash bench/pwsh-bench.sh percall-cost.ps1 | tee "$out/percall.txt"

echo; echo "== 3. 10,000 distinct calls once (bench/pwsh-bench.sh bulk.ps1 -Count 10000 -Rounds 3 -SlowRounds 3)"
bash bench/pwsh-bench.sh bulk.ps1 -Count 10000 -Rounds 3 -SlowRounds 3 -Json "$out/bulk.json" 2>&1 | tee "$out/bulk.txt"

echo; echo "== 3b. the library's bulk keep-alive from Rust, by concurrency ($bin/bulk --rounds 3)"
$bin/bulk --rounds 3 --json "$out/engine.json" | tee "$out/engine.txt"

echo; echo "== 4. the keeper, 100,000 calls ($bin/keeper --calls 100000 --interval 10 --call-timeout 30 --intervals 4 --idle-secs 20)"
$bin/keeper --calls 100000 --interval 10 --call-timeout 30 --intervals 4 --idle-secs 20 | tee "$out/keeper.txt"

echo; echo "== 5. the emulator's ceiling ($bin/emulator-ceiling --secs 3 --rounds 3 --levels 1,4,16,64)"
$bin/emulator-ceiling --secs 3 --rounds 3 --levels 1,4,16,64 | tee "$out/ceiling.txt"

echo; echo "== 7. issue 11: the cold whole job (bash bench/cold-job.sh 9), and 10,000 piped ids in a fresh process (bench/pwsh-bench.sh fresh-bulk.ps1)"
bash bench/cold-job.sh 9 | tee "$out/cold-job.txt"
if [[ -n ${r2r:-} ]]; then PWSH=$r2r bash bench/cold-job.sh 9 | tee "$out/cold-job-r2r.txt"; fi
for _ in 1 2 3; do bash bench/pwsh-bench.sh fresh-bulk.ps1; done | tee "$out/fresh-bulk.txt"

echo; echo "== 6. plot"
ceiling=$(sed -n 's/^concurrency  *[0-9]*: *\([0-9]*\) .*/\1/p' "$out/ceiling.txt" | sort -n | tail -n1)
python3 bench/plot.py --pipeline "$out/bulk.json" --engine "$out/engine.json" ${ceiling:+--ceiling "$ceiling"}
echo; echo "outputs in $out"
