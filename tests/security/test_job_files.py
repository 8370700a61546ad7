"""Attacks on what bai reads of a job's output directories as root: listOutputFiles, downloads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.service import Api, CloudError, Service
from tests.security.conftest import as_user, own_dir, spec, stdouterr

pytestmark = pytest.mark.slurm


def test_a_stdouterr_replaced_by_a_link_to_root_lists_and_serves_nothing_of_the_host(
    bob: Api, service: Service, workspace: str, cluster: str, outdir: Path
) -> None:
    """Attacks listOutputFiles: bob's job swaps its stdouterr for a symlink to /."""
    swap = 'd="$AZ_BATCHAI_STDOUTERR_DIR"; echo hi; mv "$d" "$d.real" && ln -s / "$d"'
    bob.job(workspace, "exp", "root", spec(cluster, swap, outdir))
    done = bob.wait_job(workspace, "exp", "root")
    assert (stdouterr(outdir, done)).is_symlink()  # the attack really happened
    for directory in (".", "etc", "var/lib/bai"):
        with pytest.raises(CloudError) as refused:
            bob.files(workspace, "exp", "root", directory=directory)
        assert refused.value.status == 400, refused.value.error
        assert "symlink" in refused.value.error["message"]
        assert "shadow" not in str(refused.value.error)
    # The service's own database is untouched: a token made now works (the reported symptom
    # was a token the service did not know, after it had opened bai.db through the link).
    bai = Path(sys.executable).parent / "bai"
    made = subprocess.run(
        [str(bai), "token", "create", "--user", "bob"],
        env={**os.environ, **service.env},
        capture_output=True,
        text=True,
        check=True,
    )
    fresh = Api(service, made.stdout.strip(), rg=bob.rg)
    assert fresh.get_job(workspace, "exp", "root")["name"] == "root"
    fresh.close()


def test_links_fifos_and_others_files_inside_stdouterr_are_left_out_of_listings(
    bob: Api, workspace: str, cluster: str, outdir: Path
) -> None:
    """Attacks listing and download: links to /etc/shadow and bai.db, a FIFO, a device link."""
    plant = (
        'd="$AZ_BATCHAI_STDOUTERR_DIR"; echo real > "$d/real.txt"; '
        'ln -s /etc/shadow "$d/shadow"; ln -s /var/lib/bai/bai.db "$d/db"; '
        'ln -s /var/lib/bai "$d/state"; ln -s /dev/zero "$d/zero"; mkfifo "$d/fifo"'
    )
    bob.job(workspace, "exp", "plant", spec(cluster, plant, outdir))
    done = bob.wait_job(workspace, "exp", "plant")
    assert done["properties"]["executionState"] == "succeeded"
    files = bob.files(workspace, "exp", "plant")
    assert {"real.txt", "stdout.txt", "stderr.txt", "execution.log"} <= set(files)
    assert not {"shadow", "db", "state", "zero", "fifo"} & set(files), sorted(files)
    assert bob.read(workspace, "exp", "plant", "real.txt") == "real\n"
    with pytest.raises(CloudError) as into_link:
        bob.files(workspace, "exp", "plant", directory="state")
    assert into_link.value.status == 400 and "symlink" in into_link.value.error["message"]


def test_a_file_swapped_for_a_link_after_its_link_was_handed_out_is_not_served(
    bob: Api, workspace: str, cluster: str, outdir: Path
) -> None:
    """Attacks a download: the signed link names a real file, which bob then swaps."""
    bob.job(workspace, "exp", "swap", spec(cluster, "echo mine", outdir))
    done = bob.wait_job(workspace, "exp", "swap")
    url = bob.files(workspace, "exp", "swap")["stdout.txt"]["downloadUrl"]
    assert httpx.get(url, verify=bob.tls).text == "mine\n"
    target = stdouterr(outdir, done) / "stdout.txt"
    as_user("bob", "ln", "-sf", "/etc/shadow", str(target))
    answer = httpx.get(url, verify=bob.tls)
    assert answer.status_code == 404 and "root:" not in answer.text
    as_user("bob", "rm", "-f", str(target))
    as_user("bob", "mkfifo", str(target))
    answer = httpx.get(url, verify=bob.tls, timeout=10)  # a FIFO must not hang the download
    assert answer.status_code == 404


def test_forged_download_links_are_refused(
    bob: Api, alice: Api, workspace: str, cluster: str, outdir: Path
) -> None:
    """Attacks the signed URLs: bob re-aims his valid link at alice's job, or forges one."""
    alice.job(workspace, "exp", "hers", spec(cluster, "echo alice-only", own_dir(outdir, "a")))
    bob.job(workspace, "exp", "his", spec(cluster, "echo bob", own_dir(outdir, "b")))
    hers = alice.wait_job(workspace, "exp", "hers")
    assert bob.wait_job(workspace, "exp", "his")["properties"]["executionState"] == "succeeded"
    url = bob.files(workspace, "exp", "his")["stdout.txt"]["downloadUrl"]
    path, _, query = url.partition("?")
    her_uid = hers["properties"]["jobOutputDirectoryPathSegment"].rsplit("/", 1)[1]
    his_uid = path.split("/bai/files/", 1)[1].split("/", 1)[0]
    forged = [
        path.replace(his_uid, her_uid) + "?" + query,  # another job, same signature
        url.split("&sig=")[0] + "&sig=" + "0" * 64,  # a made-up signature
        url.split("&sig=")[0] + "&sig=zz",  # not even hex
        url.replace("se=", "se=9"),  # a later expiry under the old signature
    ]
    for link in forged:
        answer = httpx.get(link, verify=bob.tls)
        assert answer.status_code == 401, (link, answer.text)
        assert "alice-only" not in answer.text
