"""A job's spool and its root-side plan, reached only through `adapter.boundary`.

`<spool>/jobs/<uuid>` belongs to the job's user (the job writes execution.log and slurm.out
there); bai writes the user's plan, secrets and rclone config into it as files of that user.
`<spool>/plans/<uuid>.json` is root's (0600 in a 0700 directory): what the root Prolog and
Epilog may do for the job, bound to the owner's uid and, once known, the Slurm job id.
"""

from __future__ import annotations

import json
import os
import pwd
from dataclasses import dataclass
from typing import Any

from adapter import boundary
from adapter.jobs.volumes import ROOT_KINDS, Volume
from adapter.records import Job

LOG_CAP = 4 * 1024 * 1024  # execution.log: a few lines per run, even after many requeues
NOTE_CAP = 64 * 1024  # mount-error: one line per volume
USER_FILES = ("plan.json", "secrets.env", "rclone.conf")


@dataclass(frozen=True)
class Owner:
    """The Unix identity a job's files belong to."""

    name: str
    uid: int
    gid: int

    @classmethod
    def of(cls, user: str) -> Owner:
        entry = pwd.getpwnam(user)  # KeyError: no such user
        return cls(user, entry.pw_uid, entry.pw_gid)


class JobSpool:
    """Lays out, reads and removes jobs' spool entries and plans under one spool root."""

    def __init__(self, spool_root: str) -> None:
        self.root = spool_root.rstrip("/")
        self.jobs = f"{self.root}/jobs"
        self.plans = f"{self.root}/plans"
        self._plans_made = False  # root's own directory: made and checked once per process

    def spool_of(self, job: Job) -> str:
        return str(job.info["layout"]["spool"])

    def plan_path(self, uid: str) -> str:
        return f"{self.plans}/{uid}.json"

    # -- writing -------------------------------------------------------------------------------

    def lay_out(self, job: Job, files: dict[str, str], *, crash_midway: bool = False) -> None:
        """The spool directory, the root plan and the user's files (each replaced atomically).
        `crash_midway` (tests) ends the process halfway through writing the last file."""
        owner = Owner.of(job.owner)
        boundary.make_user_dir(self.jobs, job.uid, owner.uid, owner.gid, 0o700)
        self.write_plan(job, owner, slurm_id=None)
        texts = {"plan.json": json.dumps(self.user_plan(job), indent=1), **files}
        boundary.write_user_files(
            self.spool_of(job),
            {name: text.encode(errors="surrogateescape") for name, text in texts.items()},
            uid=owner.uid,
            gid=owner.gid,
            mode=0o600,
            midway=(lambda: os._exit(3)) if crash_midway else None,
        )

    def write_plan(self, job: Job, owner: Owner, slurm_id: int | None) -> None:
        if not self._plans_made:
            boundary.make_user_dir(self.root, "plans", 0, 0, 0o700)
            self._plans_made = True
        text = json.dumps(self.root_plan(job, owner, slurm_id), indent=1).encode()
        boundary.write_user_files(self.plans, {f"{job.uid}.json": text}, uid=0, gid=0, mode=0o600)

    def bind(self, job: Job, slurm_id: int) -> None:
        """Name the Slurm job in the root plan: from now on only that job gets its mounts. A
        plan already removed (a job that ended first) is not made again."""
        if os.path.exists(self.plan_path(job.uid)):  # root's own directory: nothing to trust
            self.write_plan(job, Owner.of(job.owner), slurm_id)

    def root_plan(self, job: Job, owner: Owner, slurm_id: int | None) -> dict[str, Any]:
        layout = job.info["layout"]
        # Slurm 22.05's Prolog does not say which array a task is of: an array's plan is
        # bound to its owner alone, and its tasks on one host share one set-up.
        sb = job.info.get("sbatch")
        array = bool(sb.get("array")) if sb is not None else False
        return {
            "uid": job.uid,
            "owner_uid": owner.uid,
            "owner_gid": owner.gid,
            "slurm_job_id": None if array else slurm_id,
            "array": array,
            "job_temp": layout["job_temp"],
            "mount_roots": [layout["job_mount_root"], layout["mount_root"]],
            "volumes": [v.plan() for v in volumes_of(job) if v.kind in ROOT_KINDS],
        }

    def user_plan(self, job: Job) -> dict[str, Any]:
        """What `bai-node-helper prepare/teardown` (as the job's user) work from; no secrets."""
        layout = job.info["layout"]
        spool = self.spool_of(job)
        return {
            "spool": spool,
            "job_temp": layout["job_temp"],
            "mount_roots": [layout["job_mount_root"], layout["mount_root"]],
            "volumes": [v.plan() for v in volumes_of(job)],
            "rclone_config": f"{spool}/rclone.conf",
        }

    # -- reading -------------------------------------------------------------------------------

    def read(self, job: Job, name: str, cap: int) -> str | None:
        """A file the job wrote into its spool; None if missing; UnsafePath if not trusted."""
        data = boundary.read_bytes(self.spool_of(job), name, Owner.of(job.owner).uid, cap)
        return None if data is None else data.decode(errors="replace")

    # -- removing ------------------------------------------------------------------------------

    def forget_secrets(self, job: Job) -> None:
        """The files only a running job needs, and its root plan. (A user removed from the host
        since leaves their files to the removal of the whole spool.)"""
        try:
            uid = Owner.of(job.owner).uid
        except KeyError:
            pass
        else:
            for name in USER_FILES:
                boundary.remove_user_file(self.spool_of(job), name, uid)
        boundary.remove_user_file(self.plans, f"{job.uid}.json", 0)

    def remove(self, job: Job) -> bool:
        """The whole spool directory (it must be the job user's); False if something stayed."""
        try:
            owners = frozenset({0, Owner.of(job.owner).uid})
        except KeyError:
            owners = frozenset({0})
        self.forget_secrets(job)
        return boundary.remove_tree(self.jobs, job.uid, owners)


def volumes_of(job: Job) -> list[Volume]:
    """The job's resolved volumes, as recorded with it."""
    return [
        Volume(
            label=v["label"],
            kind=v["kind"],
            source=v["source"],
            options=v["options"],
            mountpoint=v["mountpoint"],
            adapter_path=v["adapter_path"],
            remote=v.get("remote") or None,
            remote_name=v["remote_name"],
        )
        for v in job.info["volumes"]
    ]
