"""Requests generated from the API's own OpenAPI schema (schemathesis), valid and invalid alike,
through the started app on the fake engine: whatever a client sends, the answer is never a 500."""

import schemathesis
from hypothesis import HealthCheck, settings as hypothesis_settings

from interviewer.api.app import create_app

schema = schemathesis.openapi.from_dict(create_app().openapi())  # building the app has no side effects


@schema.parametrize()
@hypothesis_settings(max_examples=30, derandomize=True, database=None, deadline=None,
                     suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case, client):  # client: the app started on the fake engine
    if "session_id" in (case.path_parameters or {}):  # a real session: unknown ones are 404 (see test_api)
        opened = client.post("/sessions", json={"n_questions": 2}).json()
        case.path_parameters["session_id"] = opened["session"]["id"]
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {opened['token']}"}
    request = case.as_transport_kwargs(base_url="")
    if not request.get("cookies"):
        request.pop("cookies", None)
    if isinstance(request.get("data"), (bytes, str)):
        request["content"] = request.pop("data")
    response = client.request(**request)
    assert response.status_code < 500, f"{case.as_curl_command()}\n-> {response.status_code} {response.text}"
