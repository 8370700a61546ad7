"""Where a job's files are on the nodes (pure): temp dirs, mount roots, stdouterr, outputs."""

from __future__ import annotations

from dataclasses import dataclass

from adapter.scripts.shell import expand_path


@dataclass(frozen=True)
class JobLayout:
    """Every path of one job, as the nodes see them."""

    segment: str  # jobOutputDirectoryPathSegment
    job_temp: str  # AZ_BATCHAI_JOB_TEMP, node-local
    job_temp_dir: str  # AZ_BATCHAI_JOB_TEMP_DIR
    job_mount_root: str  # AZ_BATCHAI_JOB_MOUNT_ROOT
    mount_root: str  # AZ_BATCHAI_MOUNT_ROOT (the cluster's volumes)
    spool: str  # bai's per-job directory on shared storage (execution.log, plan, secrets)
    shared_temp: str  # AZ_BATCHAI_SHARED_JOB_TEMP, shared by the job's nodes
    stdouterr: str  # AZ_BATCHAI_STDOUTERR_DIR
    outputs: dict[str, str]  # AZ_BATCHAI_OUTPUT_<ID>
    inputs: dict[str, str]  # AZ_BATCHAI_INPUT_<ID>

    def own_dirs(self) -> list[str]:
        """The job's own directories under each output prefix (`<prefix>/<segment>`): closed
        to other users, they keep the job's stdouterr and outputs private."""
        tail = f"/{self.segment}"
        paths = [self.stdouterr, *self.outputs.values()]
        return sorted({p[: p.index(tail + "/") + len(tail)] for p in paths if tail + "/" in p})

    def prefixes(self) -> list[str]:
        """The output prefixes themselves (stdOutErrPathPrefix, each pathPrefix)."""
        return [d[: -len(self.segment) - 1] for d in self.own_dirs()]

    def namespace_dirs(self) -> list[str]:
        """The levels between each prefix and the job's own directory (`<sub>`, `<rg>`, ...
        `<job>`), parents first: every user's jobs under a prefix share them."""
        parts = self.segment.split("/")[:-1]  # all but the job's uid
        return [
            "/".join([prefix, *parts[: i + 1]])
            for prefix in self.prefixes()
            for i in range(len(parts))
        ]

    @property
    def execution_log(self) -> str:
        return f"{self.spool}/execution.log"

    @property
    def hostfile(self) -> str:
        return f"{self.job_temp}/hostfile"

    def variables(self) -> dict[str, str]:
        """The path variables a job.json may name in its paths: the roots, and once they are
        laid out the input and output directories (script and config paths name them)."""
        return {
            "AZ_BATCHAI_MOUNT_ROOT": self.mount_root,
            "AZ_BATCHAI_JOB_MOUNT_ROOT": self.job_mount_root,
            "AZ_BATCHAI_JOB_TEMP": self.job_temp,
            "AZ_BATCHAI_JOB_TEMP_DIR": self.job_temp_dir,
            "AZ_BATCHAI_SHARED_JOB_TEMP": self.shared_temp,
            **{f"AZ_BATCHAI_INPUT_{k}": v for k, v in self.inputs.items()},
            **{f"AZ_BATCHAI_OUTPUT_{k}": v for k, v in self.outputs.items()},
        }


def job_segment(sub: str, rg: str, ws: str, exp: str, job: str, uid: str) -> str:
    return f"{sub}/{rg}/workspaces/{ws}/experiments/{exp}/jobs/{job}/{uid}"


def build_layout(
    *,
    segment: str,
    uid: str,
    job_root: str,
    spool_root: str,
    cluster_mount_root: str,
    std_out_err_prefix: str,
    outputs: list[dict[str, str]],
    inputs: list[dict[str, str]],
) -> JobLayout:
    """Expand the job's paths; a path naming an unknown variable is refused (InvalidRequest)."""
    job_temp = f"{job_root}/{uid}"
    spool = f"{spool_root}/jobs/{uid}"
    base = JobLayout(
        segment=segment,
        job_temp=job_temp,
        job_temp_dir=job_root,
        job_mount_root=f"{job_temp}/mounts",
        mount_root=cluster_mount_root,
        spool=spool,
        shared_temp=f"{spool}/shared",
        stdouterr="",
        outputs={},
        inputs={},
    )
    variables = base.variables()
    prefix = expand_path(std_out_err_prefix, variables, field="properties.stdOutErrPathPrefix")
    out = {}
    for i, d in enumerate(outputs):
        root = expand_path(
            d["pathPrefix"], variables, field=f"properties.outputDirectories[{i}].pathPrefix"
        )
        suffix = d.get("pathSuffix")
        out[d["id"].upper()] = f"{root}/{segment}/outputs" + (f"/{suffix}" if suffix else "")
    ins = {
        d["id"].upper(): expand_path(
            d["path"], variables, field=f"properties.inputDirectories[{i}].path"
        )
        for i, d in enumerate(inputs)
    }
    return JobLayout(
        **{
            **base.__dict__,
            "stdouterr": f"{prefix}/{segment}/stdouterr",
            "outputs": out,
            "inputs": ins,
        }
    )
