#!/bin/bash
# bai job rg/ws/exp/job1 (0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b); rendered by bai
#SBATCH --job-name=job1
#SBATCH --partition=c1-012345
#SBATCH --nodes=2
#SBATCH --exclusive
#SBATCH --gres=gpu:a100:2
#SBATCH --time=10080
#SBATCH --nice=1000
#SBATCH --comment=bai:0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b
#SBATCH --chdir=/var/lib/bai/spool/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b
#SBATCH --output=/var/lib/bai/spool/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/slurm.out
#SBATCH --requeue

# -- bai
BAI_EXEC_LOG=/var/lib/bai/spool/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/execution.log
BAI_STDOUTERR=/mnt/batch/tasks/shared/LS_root/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/cluster-mounts/afs/sub0/rg/workspaces/ws/experiments/exp/jobs/job1/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/stdouterr
BAI_SPOOL=/var/lib/bai/spool/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b
BAI_PLAN=/var/lib/bai/spool/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/plan.json
BAI_TIME_LIMIT=604800
BAI_CAPPED=0
BAI_GPUS=2
BAI_RUN_START=$(date +%s)
BAI_CHILD=
BAI_ENDED=
BAI_CONTAINER=()
declare -A BAI_NODE_ADDR=([gpu-a100-1]=10.0.0.1 [gpu-a100-2]=10.0.0.2)

# -- environment
export AZ_BATCHAI_MOUNT_ROOT=/mnt/batch/tasks/shared/LS_root/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/cluster-mounts
export AZ_BATCHAI_JOB_MOUNT_ROOT=/mnt/batch/tasks/shared/LS_root/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/mounts
export AZ_BATCHAI_JOB_TEMP=/mnt/batch/tasks/shared/LS_root/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b
export AZ_BATCHAI_JOB_TEMP_DIR=/mnt/batch/tasks/shared/LS_root/jobs
export AZ_BATCHAI_SHARED_JOB_TEMP=/var/lib/bai/spool/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/shared
export AZ_BATCHAI_STDOUTERR_DIR=/mnt/batch/tasks/shared/LS_root/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/cluster-mounts/afs/sub0/rg/workspaces/ws/experiments/exp/jobs/job1/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/stdouterr
export AZ_BATCHAI_MPI_HOST_FILE=/mnt/batch/tasks/shared/LS_root/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/hostfile
export AZ_BATCHAI_NUM_GPUS=2
export LEARNING_RATE=0.01

# -- helpers
bai_log() {
  local line; line=$(printf '{"time":"%s","event":"%s","run":%s%s}' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "${SLURM_RESTART_COUNT:-0}" "${2:+,$2}")
  printf "%s\n" "$line" >>"$BAI_EXEC_LOG"
  if [ -d "$BAI_STDOUTERR" ]; then
    printf "%s\n" "$line" >>"$BAI_STDOUTERR/execution.log"
  fi
}
bai_end() {  # exit code, error code ('' when none), extra JSON fields
  [ -n "$BAI_ENDED" ] && return
  BAI_ENDED=1
  bai_log end "\"exit\":$1,\"error\":\"$2\"${3:+,$3}"
}
bai_finish() {
  if [ "$1" -eq 0 ]; then bai_end 0 ""; else bai_end "$1" JobFailed; fi
  exit "$1"
}
bai_run() {  # run in the background, so the traps below fire while it runs
  "$@" & BAI_CHILD=$!
  local rc
  while :; do wait "$BAI_CHILD"; rc=$?; kill -0 "$BAI_CHILD" 2>/dev/null || break; done
  BAI_CHILD=
  return $rc
}
bai_on_term() {
  local elapsed=$(( $(date +%s) - BAI_RUN_START ))
  local slack=$(( BAI_TIME_LIMIT / 4 < 60 ? BAI_TIME_LIMIT / 4 : 60 ))
  if [ $elapsed -ge $(( BAI_TIME_LIMIT - slack )) ]; then
    if [ $BAI_CAPPED -eq 1 ]; then bai_end 143 LowPriorityTimeLimitExceeded;
    else bai_end 143 MaxWallClockTimeExceeded; fi
  else
    bai_log signal "\"signal\":\"TERM\""
  fi
}
trap 'bai_log notice "\"signal\":\"USR1\""' USR1
trap bai_on_term TERM
mapfile -t BAI_NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
bai_addr() { echo "${BAI_NODE_ADDR[$1]:-$1}"; }
bai_log start "\"nodes\":$SLURM_JOB_NUM_NODES"

# -- every node: job temp, mount roots, volumes
srun --overlap --ntasks-per-node=1 --nodes="$SLURM_JOB_NUM_NODES" \
  --output="$BAI_SPOOL/prepare-%n.out" /usr/local/libexec/bai/bai-node-helper prepare "$BAI_PLAN"
rc=$?
if [ $rc -eq 3 ]; then
  bai_end 1 NodePreparationFailed "\"detail\":\"see $BAI_SPOOL/mount-error\""
  exit 1
elif [ $rc -ne 0 ]; then
  bai_end 1 VolumeMountFailed "\"detail\":\"see $BAI_SPOOL/mount-error\""
  exit 1
fi

# -- directories and logs (outputs exist, owned by the job user, before the job runs)
mkdir -p -- /mnt/batch/tasks/shared/LS_root/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/cluster-mounts/afs || { bai_end 1 OutputDirectoryFailed; exit 1; }
for d in /mnt/batch/tasks/shared/LS_root/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/cluster-mounts/afs/sub0 /mnt/batch/tasks/shared/LS_root/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/cluster-mounts/afs/sub0/rg /mnt/batch/tasks/shared/LS_root/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/cluster-mounts/afs/sub0/rg/workspaces /mnt/batch/tasks/shared/LS_root/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/cluster-mounts/afs/sub0/rg/workspaces/ws /mnt/batch/tasks/shared/LS_root/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/cluster-mounts/afs/sub0/rg/workspaces/ws/experiments /mnt/batch/tasks/shared/LS_root/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/cluster-mounts/afs/sub0/rg/workspaces/ws/experiments/exp /mnt/batch/tasks/shared/LS_root/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/cluster-mounts/afs/sub0/rg/workspaces/ws/experiments/exp/jobs /mnt/batch/tasks/shared/LS_root/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/cluster-mounts/afs/sub0/rg/workspaces/ws/experiments/exp/jobs/job1; do
  [ -d "$d" ] || mkdir -m 1777 -- "$d" 2>/dev/null || [ -d "$d" ] || { bai_end 1 OutputDirectoryFailed; exit 1; }
done
mkdir -p -- /mnt/batch/tasks/shared/LS_root/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/cluster-mounts/afs/sub0/rg/workspaces/ws/experiments/exp/jobs/job1/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/stdouterr /var/lib/bai/spool/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/shared || { bai_end 1 OutputDirectoryFailed; exit 1; }
chmod 0700 -- /mnt/batch/tasks/shared/LS_root/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/cluster-mounts/afs/sub0/rg/workspaces/ws/experiments/exp/jobs/job1/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b || { bai_end 1 OutputDirectoryFailed; exit 1; }
cp -f "$BAI_EXEC_LOG" "$BAI_STDOUTERR/execution.log"
exec >>"$BAI_STDOUTERR/stdout.txt" 2>>"$BAI_STDOUTERR/stderr.txt"
cd "$AZ_BATCHAI_JOB_TEMP" || exit 1
for node in "${BAI_NODES[@]}"; do echo "$(bai_addr "$node") slots=$BAI_GPUS"; done >"$AZ_BATCHAI_MPI_HOST_FILE"

# -- launch
bai_run srun --overlap --nodes=2 --ntasks=4 --ntasks-per-node=2 --mpi=pmix --open-mode=append --output="$BAI_STDOUTERR/stdout.txt" --error="$BAI_STDOUTERR/stderr.txt" bash -c 'exec "$(command -v python3 || command -v python || echo python3)" /mnt/batch/tasks/shared/LS_root/jobs/0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/mounts/hvd/train.py --batch-size 64'
bai_finish $?
