"""The operations table: every operation knows its path, request type and reply type, and the
client and the emulator read the same table."""

from __future__ import annotations

import attrs
import pytest

from miocreate_async import DEFAULT_PATHS, Operation, TaskKind
from miocreate_async._converter import structure, unstructure
from miocreate_async._models import Hd
from miocreate_async._operations import endpoints
from miocreate_async._wire import FaceSwapRequest, TaskCreated
from miocreate_async.emulator._api import HANDLERS


@pytest.mark.parametrize("operation", list(Operation))
def test_every_operation_has_a_path_an_endpoint_and_an_emulator_route(
    operation: Operation,
) -> None:
    endpoint = operation.endpoint
    assert endpoint is endpoints()[operation]
    assert endpoint.operation is operation
    assert attrs.has(endpoint.request)
    assert attrs.has(endpoint.reply)
    assert DEFAULT_PATHS[operation].startswith("/v1/")
    assert operation in HANDLERS


@pytest.mark.parametrize("kind", list(TaskKind))
def test_each_task_kind_is_created_by_its_operation(kind: TaskKind) -> None:
    operation = Operation.creating(kind)
    assert operation.value == kind.value
    assert operation.creates_task
    assert operation.endpoint.reply is TaskCreated


@pytest.mark.parametrize(
    "operation",
    [Operation.TOKEN, Operation.UPLOAD_URL, Operation.ACCESS_URL, Operation.TASK_DETAIL],
)
def test_other_operations_create_no_task(operation: Operation) -> None:
    assert not operation.creates_task


def test_a_request_round_trips_through_its_endpoint_type() -> None:
    request = FaceSwapRequest(main_key="in/a.jpg", target_key="in/me.png", is_hd=Hd.of(True))
    wire = unstructure(request)
    assert structure(wire, Operation.IMAGE_SWAP.endpoint.request) == request
