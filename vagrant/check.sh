#!/bin/sh
# Checks the Vagrant cluster from the host (make vagrant-check): both nodes idle with their gres,
# and one two-node job, submitted on ctl as alice, runs as alice on node1 and node2 with a GPU each.
set -eu

key=${BAI_VAGRANT_KEY:-$HOME/.vagrant.d/insecure_private_key}
# One command line for ctl's shell (ssh joins its arguments, so quote inside the string).
on_ctl() {
    ssh -q -i "$key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o ConnectTimeout=10 vagrant@192.168.56.10 "$1"
}
fail() {
    echo "vagrant-check: $*" >&2
    exit 1
}

echo "==> nodes, as ctl's slurmctld sees them"
on_ctl "sinfo -N -o '%N %o %T %G'" || fail "no answer from ctl: is the cluster up? (make vagrant-up)"
states=$(on_ctl "sinfo -h -N -o '%N:%t:%G'" | sort -u | tr '\n' ' ')
[ "$states" = "node1:idle:gpu:t4:1 node2:idle:gpu:t4:1 " ] ||
    fail "expected node1 and node2 idle with gpu:t4:1, got: $states"

echo "==> a two-node job as alice"
on_ctl "sudo scontrol create PartitionName=check Nodes=node1,node2 State=UP MaxTime=5"
trap 'on_ctl "sudo scontrol delete PartitionName=check"' EXIT
# shellcheck disable=SC2016 # expanded on the nodes
out=$(on_ctl 'sudo -u alice srun -p check -N2 --gres=gpu:t4:1 -t 1 sh -c '"'"'echo "$(hostname) $(id -un) gpus=$CUDA_VISIBLE_DEVICES"'"'" | sort)
echo "$out"
[ "$out" = "$(printf 'node1 alice gpus=0\nnode2 alice gpus=0')" ] ||
    fail "the job did not run as alice on node1 and node2 with one GPU each"
echo "==> the Vagrant cluster works"
