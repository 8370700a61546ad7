#!/bin/sh
# A first Batch AI job on the dev cluster, with the bai CLI (run by `make dev`, after . .dev/env).
set -eu
bai() { "$(dirname "$0")/../.venv/bin/bai" "$@"; }
job="hello-$(date +%s)"
bai workspace create -n dev >/dev/null
bai cluster show -n first -w dev >/dev/null 2>&1 ||
  bai cluster create -n first -w dev -s STANDARD_NC6 --vm-priority lowpriority -t 1 -u alice >/dev/null
bai experiment create -n first -w dev >/dev/null
echo "==> bai job create -n $job -e first -w dev -c first -f examples/hello.job.json"
bai job create -n "$job" -e first -w dev -c first -f "$(dirname "$0")/hello.job.json" >/dev/null
bai job wait -n "$job" -e first -w dev --interval 1
echo "==> bai job file stream -j $job -e first -w dev -f stdout.txt"
bai job file stream -j "$job" -e first -w dev -f stdout.txt
echo "==> bai job file list -j $job -e first -w dev -d MODEL"
bai job file list -j "$job" -e first -w dev -d MODEL
