"""Stand-in for mnist_replica.py: TF_CONFIG, ps/worker hosts and ports, reachable servers."""

import argparse
import json
import socket
import time

from standin import check, env, report, writable

parser = argparse.ArgumentParser()
for flag in ("--job_name", "--num_gpus", "--ps_hosts", "--worker_hosts", "--task_index"):
    parser.add_argument(flag, required=True)
for flag in ("--train_steps", "--checkpoint_dir", "--log_dir", "--data_dir"):
    parser.add_argument(flag, default=None)
args = parser.parse_args()
index = int(args.task_index)
ps, workers = args.ps_hosts.split(","), args.worker_hosts.split(",")
check(args.ps_hosts == env("AZ_BATCHAI_PS_HOSTS"), "--ps_hosts != $AZ_BATCHAI_PS_HOSTS")
check(args.worker_hosts == env("AZ_BATCHAI_WORKER_HOSTS"), "--worker_hosts mismatch")
check(len(ps) == 1 and len(workers) == 2, f"want 1 ps and 2 workers, got {ps} {workers}")
check(index == int(env("AZ_BATCHAI_TASK_INDEX")), "--task_index != $AZ_BATCHAI_TASK_INDEX")
config = json.loads(env("TF_CONFIG"))
check(config["cluster"]["ps"] == ps and config["cluster"]["worker"] == workers, "TF_CONFIG cluster")
want = "ps" if args.job_name == "ps" else ("master" if index == 0 else "worker")
check(config["task"] == {"type": want, "index": index}, f"TF_CONFIG task {config['task']}")
me = (ps if args.job_name == "ps" else workers)[index]
host, port = me.rsplit(":", 1)
server = socket.create_server((host, int(port)))  # this task's own address is bindable
if args.job_name == "ps":
    report(framework="tensorflow", role="ps", index=index, address=me)
    while True:  # a parameter server serves until the workers are done
        conn, _ = server.accept()
        conn.close()
for address in ps:  # every worker reaches the parameter server
    h, p = address.rsplit(":", 1)
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection((h, int(p)), timeout=2).close()
            break
        except OSError:
            check(time.time() < deadline, f"parameter server {address} is not reachable")
            time.sleep(0.2)
for directory in (args.checkpoint_dir, args.log_dir):
    check(directory, "checkpoint_dir and log_dir are set")
    writable(directory)
report(framework="tensorflow", role=want, index=index, address=me)
