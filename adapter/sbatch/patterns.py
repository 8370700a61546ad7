"""The file names Slurm 22.05 makes of -o/-e/-i patterns for a batch script.

Follows slurmstepd's expansion for the batch step (src/slurmd/common/fname.c), checked against
the files the dev cluster's slurmd wrote. sbatch itself prefixes a relative name with the job's
working directory (--chdir, else the current one) before sending it; `expand` does not.
"""

from __future__ import annotations

# Slurm's NO_VAL: what %a gives for a job that is not an array task.
NO_VAL = 0xFFFFFFFE
_MAX_WIDTH = 10


def default_output(array: bool) -> str:
    """The pattern of the output file when -o is not given."""
    return "slurm-%A_%a.out" if array else "slurm-%j.out"


def _unescape(pattern: str) -> str | None:
    r"""Without its backslashes (`\\` keeps one), or None when it has none."""
    if "\\" not in pattern:
        return None
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            if pattern.startswith("\\", i + 1):
                out.append("\\")
                i += 1
        else:
            out.append(pattern[i])
        i += 1
    return "".join(out)


def expand(
    pattern: str,
    *,
    job_id: int,
    array_job_id: int | None,
    array_task_id: int | None,
    user: str,
    job_name: str,
    node: str,
    node_index: int = 0,
    task: int = 0,
) -> str:
    r"""The name Slurm makes of `pattern` for the batch step of a job.

    Codes: %% a literal %, %A the array's job id (the job id outside arrays), %a the task
    index (4294967294 outside arrays), %J and %j the job id (the batch step has no step id),
    %N the host name slurmd runs on, %n the node index, %s "batch", %t the task, %u the user,
    %x the job name. A number after % pads with zeros (at most 10 wide). Any backslash turns
    substitution off (the backslashes go, `\\` keeps one). Slurm 22.05 has no %b: it stays.
    Unknown codes stay as they are, except that a width before one loses all but its last digit.
    """
    plain = _unescape(pattern)
    if plain is not None:
        return plain
    task_id = NO_VAL if array_task_id is None else array_task_id
    numbers = {
        "a": task_id,
        "A": job_id if array_task_id is None else (array_job_id or job_id),
        "J": job_id,
        "j": job_id,
        "n": node_index,
        "t": task,
    }
    words = {"N": node, "s": "batch", "u": user, "x": job_name}
    out: list[str] = []
    p = q = 0
    end = len(pattern)
    while p < end:
        if pattern[p] != "%":
            p += 1
            continue
        if pattern.startswith("%", p + 1):
            out.append(pattern[q : p + 1])
            p += 2
            q = p
            continue
        p += 1
        width = 0
        if p < end and "0" <= pattern[p] <= "9":
            out.append(pattern[q : p - 1])
            digits = p
            while p < end and "0" <= pattern[p] <= "9":
                p += 1
            width = min(int(pattern[digits:p]), _MAX_WIDTH)
            q = p - 1  # what an unknown code keeps: the last digit
            if p == end:
                break
        code = pattern[p : p + 1]
        if code in numbers:
            out.append(pattern[q : p - 1] + str(numbers[code]).zfill(width))
        elif code in words:
            out.append(pattern[q : p - 1] + words[code])
        else:
            continue
        p += 1
        q = p
    out.append(pattern[q:p])
    return "".join(out)
