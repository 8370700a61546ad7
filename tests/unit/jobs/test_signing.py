"""The URL signing key is made whole or not at all, refused when unsafe, and signatures are
checked for shape, expiry and origin."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from adapter.errors import BaiError
from adapter.jobs import signing
from adapter.jobs.signing import (
    EXPIRY_SLACK_SECONDS,
    MAX_EXPIRY_SECONDS,
    SigningKeyError,
    UrlSigner,
)

NOW = 1_800_000_000.0
FIX = "remove it and restart bai: a new key is made, and links handed out before stop working"


def private_file(path: Path, data: bytes, mode: int = 0o600) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    os.write(fd, data)
    os.close(fd)
    os.chmod(path, mode)
    return path


def refused(key: Path) -> str:
    with pytest.raises(SigningKeyError) as info:
        UrlSigner(key)
    message = str(info.value)
    assert str(key) in message and message.endswith(FIX)
    assert isinstance(info.value, BaiError)  # `bai serve` prints it as one line
    return message


def test_a_new_key_is_32_bytes_0600_and_kept(tmp_path: Path) -> None:
    key = tmp_path / "state" / "url-signing.key"
    signer = UrlSigner(key)
    st = key.lstat()
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_size == 32 and st.st_uid == os.geteuid()
    assert os.listdir(key.parent) == ["url-signing.key"]  # no temp file left behind
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert UrlSigner(key).sign("p", 1) == signer.sign("p", 1)  # read back, not made again


def test_a_crash_mid_write_of_an_earlier_version_leaves_an_empty_key_that_is_refused(
    tmp_path: Path,
) -> None:
    key = tmp_path / "url-signing.key"
    private_file(tmp_path / ".url-signing.key.0123456789abcdef", b"half a k")
    private_file(key, b"")
    assert refused(key).startswith(f"the URL signing key {key} is 0 bytes, a key is at least 32")
    key.unlink()  # the fix the message gives
    assert len(signing.load_key(key)) == 32


def test_a_crash_before_the_link_leaves_only_a_temp_file_and_a_new_key_is_made(
    tmp_path: Path,
) -> None:
    key = tmp_path / "url-signing.key"
    leftover = private_file(tmp_path / ".url-signing.key.0123456789abcdef", b"x" * 32)
    UrlSigner(key)
    assert key.stat().st_size == 32 and key.read_bytes() != leftover.read_bytes()


def test_a_key_another_process_linked_first_is_the_one_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "url-signing.key"
    theirs = b"k" * 32
    real_link = os.link

    def racing_link(src: str | Path, dst: str | Path) -> None:
        private_file(Path(dst), theirs)  # the other process wins the race
        real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    assert signing.load_key(key) == theirs
    assert os.listdir(tmp_path) == ["url-signing.key"]


def test_a_short_key_is_refused(tmp_path: Path) -> None:
    key = private_file(tmp_path / "url-signing.key", b"k" * 16)
    assert "is 16 bytes, a key is at least 32" in refused(key)


def test_a_symlinked_key_is_refused_even_to_a_good_file(tmp_path: Path) -> None:
    target = private_file(tmp_path / "elsewhere.key", b"k" * 32)
    key = tmp_path / "url-signing.key"
    key.symlink_to(target)
    assert "is a symbolic link" in refused(key)
    dangling = tmp_path / "dangling.key"
    dangling.symlink_to(tmp_path / "missing")
    assert "is a symbolic link" in refused(dangling)  # not made through the link either
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o610])
def test_a_key_group_or_others_may_use_is_refused(tmp_path: Path, mode: int) -> None:
    key = private_file(tmp_path / "url-signing.key", b"k" * 32, mode)
    assert f"has mode {mode:04o}" in refused(key)


def test_a_directory_or_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    folder = tmp_path / "url-signing.key"
    folder.mkdir(mode=0o700)
    assert "is not a regular file" in refused(folder)
    fifo = tmp_path / "fifo.key"
    os.mkfifo(fifo, 0o600)
    assert "is not a regular file" in refused(fifo)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_key_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    key = private_file(tmp_path / "url-signing.key", b"k" * 32)
    os.chown(key, 65534, 65534)
    assert "is owned by uid 65534, not root" in refused(key)


@pytest.fixture
def signer(tmp_path: Path) -> UrlSigner:
    return UrlSigner(tmp_path / "url-signing.key")


def test_a_valid_signature_is_accepted(signer: UrlSigner) -> None:
    expires = int(NOW) + 60 * 60
    sig = signer.sign("uid/stdouterr/stdout.txt", expires)
    assert signer.verify("uid/stdouterr/stdout.txt", expires, sig, now=NOW)
    at_most = int(NOW) + MAX_EXPIRY_SECONDS + EXPIRY_SLACK_SECONDS
    assert signer.verify("p", at_most, signer.sign("p", at_most), now=NOW)


def test_forged_and_malformed_signatures_are_refused(signer: UrlSigner, tmp_path: Path) -> None:
    expires = int(NOW) + 60
    sig = signer.sign("uid/stdouterr/stdout.txt", expires)
    other_key = UrlSigner(tmp_path / "other.key").sign("uid/stdouterr/stdout.txt", expires)
    for bad in [
        "",
        "0" * 64,
        other_key,  # made with another key
        signer.sign("uid/stdouterr/stderr.txt", expires),  # for another file
        signer.sign("uid/stdouterr/stdout.txt", expires + 1),  # for another expiry
        sig.upper(),
        sig[:-1],
        sig + "0",
        f" {sig}",
        f"{sig}\n",
        sig[:-1] + "g",
        sig[:-1] + "é",  # compare_digest would raise on non-ASCII text
    ]:
        assert not signer.verify("uid/stdouterr/stdout.txt", expires, bad, now=NOW), bad


def test_expired_and_too_far_expiries_are_refused(signer: UrlSigner) -> None:
    for expires in [
        int(NOW) - 1,
        0,
        -1,
        int(NOW) + MAX_EXPIRY_SECONDS + EXPIRY_SLACK_SECONDS + 1,
        2**62,
    ]:
        assert not signer.verify("p", expires, signer.sign("p", expires), now=NOW), expires
