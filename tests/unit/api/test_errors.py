"""Requests for what bai does not serve still get an ARM CloudError, which SDKs can read."""

from __future__ import annotations

from tests.unit.api.apps import client, small_app


async def test_an_unknown_route_is_a_cloud_error_404_saying_what_bai_serves() -> None:
    async with client(small_app()) as http:
        r = await http.get("/subscriptions/s/resourceGroups/g/fileServers")
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == "NotFound" and "no fileServers" in error["message"]
    assert "GET /subscriptions/s/resourceGroups/g/fileServers" in error["message"]


async def test_a_wrong_method_is_a_cloud_error_405_with_allow() -> None:
    async with client(small_app()) as http:
        r = await http.delete("/nothing")
    assert r.status_code == 405 and r.headers["allow"] == "GET"
    assert r.json()["error"] == {
        "code": "MethodNotAllowed",
        "message": "DELETE is not an operation of /nothing",
    }
