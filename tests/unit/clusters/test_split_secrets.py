"""What of a cluster request's secrets bai keeps: only what a later setup job needs."""

from __future__ import annotations

from typing import Any

from adapter.clusters.service import split_secrets


def test_only_setup_task_secrets_are_kept_and_every_secret_leaves_the_properties() -> None:
    request: dict[str, Any] = {
        "userAccountSettings": {"adminUserName": "alice", "adminUserPassword": "hunter2"},
        "nodeSetup": {
            "setupTask": {"commandLine": "true", "secrets": [{"name": "T", "value": "s3tup"}]},
            "mountVolumes": {
                "azureFileShares": [
                    {
                        "azureFileUrl": "https://a.file.core.windows.net/s",
                        "relativeMountPath": "s",
                        "credentials": {"accountKey": "k3y"},
                    }
                ]
            },
        },
    }
    props, secrets = split_secrets(request)
    assert secrets == {"setupTask": {"T": "s3tup"}}
    assert not {"hunter2", "s3tup", "k3y"} & set(str(props).replace("'", " ").split())
    assert props["userAccountSettings"]["adminUserPassword"] is None
    assert request["userAccountSettings"]["adminUserPassword"] == "hunter2"  # not changed
