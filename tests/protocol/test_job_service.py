"""A new asynchronous service is one declaration plus one function.

tests/toy_service/toy_service.cpp declares a toy service with the same job
framework the real services use (uws/job_service.hpp); these tests drive it
over HTTP as a DALI/UWS client would, parsing the job documents with
pyvo.io.uws: the sync answer and the async job's result are the same bytes,
errors carry the same text, jobs belong to their owners, and ABORT,
EXECUTIONDURATION and DESTRUCTION work."""
import datetime
import io
import pathlib
import time
import xml.etree.ElementTree as ET

import pytest
import requests
from pyvo.io import uws

from conftest import pixserve_binary, run_uws_job, start_listening, stop_server
from test_services import error_message

SYNC = "/api/toy/sync"
ASYNC = "/api/toy/async"


def toy_binary():
    path = pathlib.Path(pixserve_binary()).parent / "tests" / "toy_service" / "pixserve-toy-service"
    assert path.exists(), f"{path} was not built (PIXSERVE_TESTS=ON builds it)"
    return str(path)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    srv = start_listening([toy_binary(), "--dir", str(tmp_path_factory.mktemp("toy")), "--port", "0"])
    yield srv
    assert stop_server(srv) == 0, srv.log()[-3000:]


def parse_job(url, headers=None):
    r = requests.get(url, headers=headers or {}, timeout=30)
    assert r.status_code == 200, r.text[:300]
    return uws.parse_job(io.BytesIO(r.content))


def error_summary(url):
    """The <uws:message> of a job's errorSummary (pyvo's parser drops its
    text, so it is read here)."""
    doc = ET.fromstring(requests.get(url, timeout=30).content)
    message = doc.find("{http://www.ivoa.net/xml/UWS/v1.0}errorSummary/{http://www.ivoa.net/xml/UWS/v1.0}message")
    return None if message is None else message.text


def create_job(toy, params, headers=None):
    r = requests.post(toy.url + ASYNC, data=params, headers=headers or {}, allow_redirects=False, timeout=30)
    assert r.status_code == 303, r.text[:300]
    return r.headers["Location"]


def wait_for(url, phases, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        job = parse_job(url)
        if job.phase in phases or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


@pytest.mark.parametrize("result", ["stream", "file"])
@pytest.mark.parametrize("user", [None, "alice"])
def test_sync_and_async_give_the_same_result(toy, result, user):
    params = {"TEXT": "hello world", "REPEAT": "3", "RESULT": result}
    headers = {"X-Toy-User": user} if user else {}
    sync = requests.get(toy.url + SYNC, params=params, headers=headers, timeout=30)
    assert sync.status_code == 200, sync.text
    assert sync.headers["Content-Type"].startswith("text/plain")
    assert sync.text == f"caller: {user or 'anonymous'}\n" + "hello world\n" * 3

    url, job = run_uws_job(toy.url, ASYNC, {**params, "PHASE": "RUN"}, headers=headers)
    assert job.phase == "COMPLETED"
    assert job.ownerid == user  # an anonymous job has a nil owner
    assert [r.id_ for r in job.results] == ["echo"]
    assert int(job.results[0].size) == len(sync.content)
    got = requests.get(job.results[0].href, headers=headers, timeout=30)
    assert got.status_code == 200
    assert got.content == sync.content


def test_errors_read_the_same_both_ways(toy):
    # Refused by the parameter declaration: at once, sync and async alike.
    message = error_message(requests.get(toy.url + SYNC, params={"TEXT": "x", "REPEAT": "0"}, timeout=30))
    assert "REPEAT" in message
    r = requests.post(toy.url + ASYNC, data={"TEXT": "x", "REPEAT": "0"}, allow_redirects=False, timeout=30)
    assert r.status_code == 400
    assert "REPEAT" in r.text
    # Refused by the function: a DALI error now, an ERROR job later, same text.
    message = error_message(requests.get(toy.url + SYNC, params={"TEXT": "fail"}, timeout=30))
    assert message == "TEXT: 'fail' asks for a failure"
    url, job = run_uws_job(toy.url, ASYNC, {"TEXT": "fail", "PHASE": "RUN"})
    assert job.phase == "ERROR"
    assert job.errorsummary.type_ == "fatal"
    assert error_summary(url) == message
    error = requests.get(url + "/error", timeout=30)
    assert error.status_code == 200
    assert message in error.text


def test_jobs_belong_to_their_owners(toy):
    alice = {"X-Toy-User": "alice"}
    url = create_job(toy, {"TEXT": "mine"}, alice)
    assert parse_job(url, alice).phase == "PENDING"
    assert requests.get(url, headers={"X-Toy-User": "bob"}, timeout=30).status_code == 404
    assert requests.get(url, timeout=30).status_code == 404
    listing = uws.parse_job_list(io.BytesIO(requests.get(toy.url + ASYNC, headers=alice, timeout=30).content))
    assert url.rsplit("/", 1)[1] in [j.jobid for j in listing]


def test_abort_stops_a_running_job(toy):
    url = create_job(toy, {"TEXT": "slow", "DELAY": "60", "PHASE": "RUN"})
    job = wait_for(url, {"EXECUTING"})
    assert job.phase == "EXECUTING"
    start = time.monotonic()
    r = requests.post(url + "/phase", data={"PHASE": "ABORT"}, allow_redirects=False, timeout=30)
    assert r.status_code == 303
    job = parse_job(url)
    assert job.phase == "ABORTED"
    assert list(job.results) == []
    assert time.monotonic() - start < 5
    # Ended: it cannot be run again.
    assert requests.post(url + "/phase", data={"PHASE": "RUN"}, allow_redirects=False, timeout=30).status_code == 400


def test_execution_duration_ends_a_job_that_runs_too_long(toy):
    url = create_job(toy, {"TEXT": "slow", "DELAY": "60"})
    r = requests.post(url + "/executionduration", data={"EXECUTIONDURATION": "1"}, allow_redirects=False, timeout=30)
    assert r.status_code == 303
    assert int(parse_job(url).executionduration.value) == 1
    requests.post(url + "/phase", data={"PHASE": "RUN"}, allow_redirects=False, timeout=30)
    job = wait_for(url, {"ERROR", "COMPLETED"})
    assert job.phase == "ERROR"
    assert "execution duration" in error_summary(url)


def test_destruction_destroys_the_job_and_its_results(toy):
    url, job = run_uws_job(toy.url, ASYNC, {"TEXT": "short-lived", "RESULT": "file", "PHASE": "RUN"})
    assert job.phase == "COMPLETED"
    result = job.results[0].href
    assert requests.get(result, timeout=30).status_code == 200
    when = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(seconds=3)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    r = requests.post(url + "/destruction", data={"DESTRUCTION": stamp}, allow_redirects=False, timeout=30)
    assert r.status_code == 303
    assert requests.get(url + "/destruction", timeout=30).text.startswith(stamp[:-1])
    destruction = parse_job(url).destruction
    assert abs(destruction.to_datetime(timezone=datetime.timezone.utc) - when) < datetime.timedelta(seconds=1)
    deadline = time.monotonic() + 20
    while requests.get(url, timeout=30).status_code != 404 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert requests.get(url, timeout=30).status_code == 404
    assert requests.get(result, timeout=30).status_code == 404


def test_deleting_a_job_removes_it(toy):
    url = create_job(toy, {"TEXT": "gone"})
    r = requests.delete(url, allow_redirects=False, timeout=30)
    assert r.status_code == 303
    assert requests.get(url, timeout=30).status_code == 404
