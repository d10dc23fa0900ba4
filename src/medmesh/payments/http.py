"""What every ``/v1`` endpoint shares: reading and checking its parameters, running a POST
idempotently, expanding the answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from medmesh.payments.components import (
    WRITE_ACCESS,
    Components,
    PaymentsComponents,
    PaymentsState,
    Reader,
    Writer,
)
from medmesh.payments.idempotency.service import Planned
from medmesh.payments.objects import stripe_response
from medmesh.payments.params import Spec, read_params, string_list
from medmesh.payments.request_bodies import form_body
from medmesh.payments.scoping import Caller
from medmesh.platform.db import RequestSession, SessionDep, SessionSource
from medmesh.platform.origin import RequestOrigin

#: The OpenAPI text of the ``Idempotency-Key`` header every POST takes.
IDEMPOTENCY_HEADER = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": 255},
            "description": "the same key replays the first response for 24 hours",
        }
    ]
}


def write_operation(spec: Spec, **extra: Any) -> dict[str, Any]:
    """The ``openapi_extra`` of a POST: its ``Idempotency-Key`` header and its form body as
    ``spec`` checks it; ``extra`` adds to the operation (``security``)."""
    return {**IDEMPOTENCY_HEADER, **form_body(spec), **extra}


#: A POST's work: given its session and its checked parameters, the object it answers with.
Run = Callable[[AsyncSession, dict[str, Any]], Awaitable[dict[str, Any]]]
#: A planned POST's work: given a source of a session for its reads (opened only if called) and
#: its checked parameters, its answer and the writes that store it.
PlanRun = Callable[[SessionSource, dict[str, Any]], Awaitable[Planned]]
#: A GET's: given its checked parameters, the object it answers with.
Find = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class WriteCall:
    """A POST (or DELETE) under ``/v1``: the request, its caller and the gateway's services."""

    request: Request
    caller: Caller
    services: PaymentsComponents

    @classmethod
    async def of(cls, request: Request) -> WriteCall:
        """The call of a direct route: the token verified and its scopes checked here, as the
        ``Posting`` dependency does."""
        principal = await WRITE_ACCESS(request)
        caller = Caller(RequestOrigin.of(request, principal))
        return cls(request, caller, PaymentsState.of(request.app).payments)

    async def write(self, spec: Spec, action: str, run: Run) -> Response:
        """Check the parameters with ``spec``, then ``run`` under the request's
        ``Idempotency-Key`` (see ``IdempotentWrites``); the answer expanded as ``expand[]``
        asks."""
        params = await read_params(self.request)
        checked = spec.parse(params)
        paths = string_list("expand", params["expand"]) if "expand" in params else []
        services, caller = self.services, self.caller

        async def expanded(session: AsyncSession) -> dict[str, Any]:
            obj = await run(session, checked)
            return await services.expander.apply(session, caller, obj, paths)

        return await services.writes.run(
            caller,
            self.request.headers.get("idempotency-key"),
            self.request.method,
            self.request.url.path,
            params,
            action,
            expanded,
        )

    async def write_planned(self, spec: Spec, action: str, plan: PlanRun) -> Response:
        """As :meth:`write`, for work that answers before it writes (see
        ``IdempotentWrites.run_planned``): its reads in a session closed before the writes,
        which run outside any session."""
        params = await read_params(self.request)
        checked = spec.parse(params)
        paths = string_list("expand", params["expand"]) if "expand" in params else []
        services, caller = self.services, self.caller
        database = PaymentsState.of(self.request.app).database

        async def planned() -> Planned:
            reads = RequestSession(database)
            try:
                answer = await plan(reads.get, checked)
                if paths and answer.status < 400:
                    answer.body = await services.expander.apply(
                        reads.get(), caller, answer.body, paths, answer.created()
                    )
                return answer
            finally:
                await reads.finish(commit=False)

        return await services.writes.run_planned(
            caller,
            self.request.headers.get("idempotency-key"),
            self.request.method,
            self.request.url.path,
            params,
            action,
            planned,
        )


@dataclass(frozen=True, slots=True)
class ReadCall:
    """A GET under ``/v1``: the request, its session, its caller and the gateway's services."""

    request: Request
    session: AsyncSession
    caller: Caller
    services: PaymentsComponents

    async def read(self, spec: Spec, find: Find) -> Response:
        """Check the parameters with ``spec``; ``find``'s object, expanded as ``expand[]``
        asks."""
        checked = spec.parse(await read_params(self.request))
        obj = await find(checked)
        paths = checked.get("expand", [])
        return stripe_response(
            await self.services.expander.apply(self.session, self.caller, obj, paths)
        )


async def _write_call(request: Request, caller: Writer, services: Components) -> WriteCall:
    return WriteCall(request, caller, services)


async def _read_call(
    request: Request, caller: Reader, session: SessionDep, services: Components
) -> ReadCall:
    return ReadCall(request, session, caller, services)


#: A POST or DELETE by a caller holding ``payments:write``.
Posting = Annotated[WriteCall, Depends(_write_call)]
#: A GET by a caller holding ``payments:read``.
Reading = Annotated[ReadCall, Depends(_read_call)]
