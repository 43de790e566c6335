"""The UWS 1.1 HTTP interface of one kind of job, e.g. /tap/async for TAP.

    router = uws_router(kind, "/tap/async")

Resources: the job list (PHASE, AFTER, LAST filters), job creation by POST (PHASE=RUN honoured),
and per job: the job document (WAIT and PHASE for blocking polls), DELETE or ACTION=DELETE,
phase (RUN, ABORT), executionduration, destruction, quote, error, parameters, results and each
result, owner. Handlers only parse, call store.py and answer; state lives in PostgreSQL.
Errors are the kind's error documents (DALI VOTable for TAP) with the HTTP status UWS implies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from escape_vo.uws import store
from escape_vo.uws.documents import (
    iso,
    job_document,
    jobs_document,
    parameters_document,
    results_document,
)
from escape_vo.uws.files import job_dir, remove_job_dir
from escape_vo.uws.forms import Form, RequestTooLarge, read_form
from escape_vo.uws.model import (
    ABORTED,
    ACTIVE,
    ERROR,
    EXECUTING,
    FINAL,
    PHASES,
    Job,
    JobKind,
    ParameterProblem,
)

log = logging.getLogger(__name__)

MAX_WAIT = 30  # seconds a WAIT request may block (WAIT=-1 means this); below proxy timeouts
CONTROL_BYTES = 1_000_000  # body limit of requests that only carry UWS control parameters
XML = "text/xml"
TEXT = "text/plain; charset=utf-8"
_RECHECK = 5.0  # seconds between re-reads of a waited-on job (in case a NOTIFY was lost)
_SETTLE = 0.25  # seconds WAIT lingers after QUEUED -> EXECUTING for the job to finish


def parse_time(text: str, name: str) -> datetime:
    """An ISO 8601 instant; without a zone it is UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ParameterProblem(
            f"{name}={text!r} is not an ISO 8601 time; write e.g. 2030-01-31T12:00:00Z"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def user(request: Request) -> str | None:
    """The authenticated user the proxy names in settings.trusted_user_header, or None."""
    header = request.app.state.settings.trusted_user_header
    name = request.headers.get(header, "").strip() if header else ""
    return name or None


def _one(form: Form, name: str) -> str | None:
    values = form.params.get(name.lower())
    if not values:
        return None
    if len(set(values)) > 1:
        raise ParameterProblem(f"{name} was given {len(values)} times with different values")
    return values[0]


def _int(text: str, name: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ParameterProblem(f"{name}={text!r} is not a whole number") from None


def uws_router(kind: JobKind, prefix: str) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=[f"{kind.name} async (UWS 1.1)"])

    # ---- helpers bound to this kind ----

    def base(request: Request) -> str:
        settings = request.app.state.settings
        root = settings.public_url or str(request.base_url)
        return root.rstrip("/") + prefix

    def error(message: str, status: int) -> Response:
        body, media_type = kind.error_document(message)
        return Response(body, status_code=status, media_type=media_type)

    def no_job(job_id: str) -> Response:
        return error(
            f"no job {job_id!r} here: it may have been deleted or destroyed at its destruction "
            f"time (results are kept {kind.retention_default // 86400} days by default); "
            f"the job list is at {prefix}",
            404,
        )

    def see(url: str) -> Response:
        return RedirectResponse(url, status_code=303)

    def job_url(request: Request, job_id: str) -> str:
        return f"{base(request)}/{job_id}"

    def execution_duration(text: str) -> int:
        seconds = _int(text, "EXECUTIONDURATION")
        if seconds < 0:
            raise ParameterProblem("EXECUTIONDURATION must be 0 (as long as allowed) or more")
        if seconds == 0 or seconds > kind.execution_hard:
            return kind.execution_hard
        return seconds

    async def load(request: Request, job_id: str, details: bool = True) -> Job | None:
        """The job, or None when there is none or it is another user's (not found either way:
        a job's existence is its owner's business)."""
        if not store_id_ok(job_id):
            return None
        async with request.app.state.pool.connection() as conn:
            job = await store.get_job(conn, job_id, kind.name, details)
        if job is not None and job.owner_id is not None and job.owner_id != user(request):
            return None
        return job

    async def form_of(request: Request, limit: int = CONTROL_BYTES) -> Form | Response:
        try:
            return await read_form(request, limit)
        except RequestTooLarge as exc:
            return error(str(exc), 413)
        except Exception as exc:  # a malformed body is the client's error
            return error(f"cannot read the request parameters: {exc}", 400)

    # ---- the job list ----

    @router.get("", summary="UWS job list (filters: PHASE, AFTER, LAST)")
    async def job_list(request: Request) -> Response:
        form = await form_of(request)
        if isinstance(form, Response):
            return form
        try:
            phases = [p.upper() for p in form.params.get("phase", [])]
            unknown = [p for p in phases if p not in PHASES]
            if unknown:
                raise ParameterProblem(
                    f"PHASE={unknown[0]} is not a UWS phase; use one of {', '.join(PHASES)}"
                )
            after_text = form.params.get("after")
            after = max(parse_time(t, "AFTER") for t in after_text) if after_text else None
            last_text = _one(form, "LAST")
            last = _int(last_text, "LAST") if last_text is not None else None
            if last is not None and last <= 0:
                raise ParameterProblem("LAST must be a positive number of jobs")
        except ParameterProblem as exc:
            return error(str(exc), 400)
        href = base(request)

        async def body():
            async with request.app.state.pool.connection() as conn:
                rows = store.list_jobs(conn, kind.name, phases, after, last, user(request))
                async for chunk in jobs_document(rows, lambda job_id: f"{href}/{job_id}"):
                    yield chunk

        return StreamingResponse(body(), media_type=XML)

    @router.post("", summary="Create a job (PHASE=RUN to start it at once)")
    async def create(request: Request) -> Response:
        form = await form_of(request, kind.max_request_bytes)
        if isinstance(form, Response):
            return form
        job_id = store.new_job_id()
        folder = job_dir(request.app.state.settings.data_dir, job_id)
        try:
            phase = _one(form, "PHASE")
            if phase is not None and phase.upper() != "RUN":
                raise ParameterProblem(
                    f"PHASE={phase} cannot be given when creating a job; "
                    "use PHASE=RUN to start it at once, or leave PHASE out"
                )
            duration_text = _one(form, "EXECUTIONDURATION")
            duration = (
                execution_duration(duration_text)
                if duration_text is not None
                else kind.execution_default
            )
            destruction_text = _one(form, "DESTRUCTION")
            destruction = parse_time(destruction_text, "DESTRUCTION") if destruction_text else None
            control = {"phase", "executionduration", "destruction", "action"}
            params = [(k, v) for k, v in form.items() if k.lower() not in control]
            if kind.prepare is not None:
                params = await kind.prepare(params, form.files, folder)
            run_id = _one(form, "RUNID")
        except ParameterProblem as exc:
            remove_job_dir(request.app.state.settings.data_dir, job_id)
            return error(str(exc), 400)
        finally:
            await form.close()
        try:
            async with request.app.state.pool.connection() as conn:
                await store.create_job(
                    conn,
                    job_id=job_id,
                    kind=kind.name,
                    parameters=params,
                    run_id=run_id,
                    owner_id=user(request),
                    execution_duration=duration,
                    destruction=destruction,
                    retention_default=kind.retention_default,
                    retention_hard=kind.retention_hard,
                    run=phase is not None,
                )
        except Exception:
            remove_job_dir(request.app.state.settings.data_dir, job_id)
            raise
        return see(job_url(request, job_id))

    # ---- one job ----

    @router.get("/{job_id}", summary="The job (WAIT=seconds [PHASE=...] blocks until it changes)")
    async def job(request: Request, job_id: str) -> Response:
        form = await form_of(request)
        if isinstance(form, Response):
            return form
        try:
            wait_text = _one(form, "WAIT")
            wait = _int(wait_text, "WAIT") if wait_text is not None else 0
            if wait < -1:
                raise ParameterProblem("WAIT must be -1 (as long as allowed), 0 or more seconds")
            wait = MAX_WAIT if wait == -1 else min(wait, MAX_WAIT)
            phase_text = _one(form, "PHASE")
            awaited = phase_text.upper() if phase_text else None
            if awaited is not None and awaited not in PHASES:
                raise ParameterProblem(f"PHASE={phase_text} is not a UWS phase")
        except ParameterProblem as exc:
            return error(str(exc), 400)
        watcher = request.app.state.uws_watcher
        async with watcher.watch(job_id) as changed:
            current = await load(request, job_id)
            if current is None:
                return no_job(job_id)
            start_phase = current.phase
            blocking = wait > 0 and start_phase in ACTIVE and awaited in (None, start_phase)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            settled = False
            while blocking:
                if current.phase != start_phase:
                    # A job that starts often ends a moment later: without PHASE, give it a
                    # short while so the client gets the final phase in the same request.
                    if current.phase != EXECUTING or awaited is not None:
                        break
                    if not settled:
                        settled = True
                        deadline = min(deadline, loop.time() + _SETTLE)
                remaining = deadline - loop.time()
                if remaining <= 0 or await request.is_disconnected():
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(remaining, _RECHECK))
                changed.clear()
                current = await load(request, job_id)
                if current is None:
                    return no_job(job_id)
        return Response(job_document(current, _result_href(request, job_id)), media_type=XML)

    def _result_href(request: Request, job_id: str):
        url = job_url(request, job_id)
        return lambda result_id: f"{url}/results/{result_id}"

    async def delete(request: Request, job_id: str) -> Response:
        if await load(request, job_id, details=False) is None:  # none, or another user's
            return no_job(job_id)
        async with request.app.state.pool.connection() as conn:
            found = await store.delete_job(conn, job_id, kind.name)
        if not found:
            return no_job(job_id)
        remove_job_dir(request.app.state.settings.data_dir, job_id)
        return see(base(request))

    @router.delete("/{job_id}", summary="Delete the job and its results")
    async def delete_job(request: Request, job_id: str) -> Response:
        return await delete(request, job_id)

    @router.post("/{job_id}", summary="ACTION=DELETE deletes the job")
    async def post_job(request: Request, job_id: str) -> Response:
        form = await form_of(request)
        if isinstance(form, Response):
            return form
        action = _one(form, "ACTION")
        if action is None or action.upper() != "DELETE":
            return error(
                "POST to a job accepts ACTION=DELETE; change the phase at "
                f"{prefix}/{job_id}/phase and the other values at their own URLs",
                400,
            )
        return await delete(request, job_id)

    # ---- phase ----

    @router.get("/{job_id}/phase", summary="The phase, as text")
    async def get_phase(request: Request, job_id: str) -> Response:
        current = await load(request, job_id, details=False)
        if current is None:
            return no_job(job_id)
        return Response(current.phase, media_type=TEXT)

    @router.post("/{job_id}/phase", summary="PHASE=RUN starts the job, PHASE=ABORT aborts it")
    async def post_phase(request: Request, job_id: str) -> Response:
        form = await form_of(request)
        if isinstance(form, Response):
            return form
        try:
            value = (_one(form, "PHASE") or "").upper()
        except ParameterProblem as exc:
            return error(str(exc), 400)
        current = await load(request, job_id, details=False)
        if current is None:
            return no_job(job_id)
        async with request.app.state.pool.connection() as conn:
            if value == "RUN":
                if current.phase in FINAL:
                    return error(
                        f"the job has already ended ({current.phase}); create a new job to run "
                        "the query again",
                        409,
                    )
                await store.queue_job(conn, job_id, kind.name)
            elif value == "ABORT":
                if current.phase not in FINAL:
                    await store.abort_job(conn, job_id, kind.name)
            else:
                return error("POST PHASE=RUN to start the job or PHASE=ABORT to abort it", 400)
        return see(job_url(request, job_id))

    # ---- executionduration, destruction ----

    @router.get("/{job_id}/executionduration", summary="Seconds the job may run")
    async def get_duration(request: Request, job_id: str) -> Response:
        current = await load(request, job_id, details=False)
        if current is None:
            return no_job(job_id)
        return Response(str(current.execution_duration), media_type=TEXT)

    @router.post("/{job_id}/executionduration", summary="EXECUTIONDURATION=seconds (capped)")
    async def post_duration(request: Request, job_id: str) -> Response:
        form = await form_of(request)
        if isinstance(form, Response):
            return form
        try:
            text = _one(form, "EXECUTIONDURATION")
            if text is None:
                raise ParameterProblem("give EXECUTIONDURATION=<seconds>")
            seconds = execution_duration(text)
        except ParameterProblem as exc:
            return error(str(exc), 400)
        current = await load(request, job_id, details=False)
        if current is None:
            return no_job(job_id)
        async with request.app.state.pool.connection() as conn:
            changed = await store.set_execution_duration(conn, job_id, kind.name, seconds)
        if not changed:
            return error(
                f"the execution duration can change only before the job starts; "
                f"it is {current.phase}",
                409,
            )
        return see(job_url(request, job_id))

    @router.get("/{job_id}/destruction", summary="When the job and its results are destroyed")
    async def get_destruction(request: Request, job_id: str) -> Response:
        current = await load(request, job_id, details=False)
        if current is None:
            return no_job(job_id)
        return Response(iso(current.destruction), media_type=TEXT)

    @router.post("/{job_id}/destruction", summary="DESTRUCTION=ISO 8601 time (capped)")
    async def post_destruction(request: Request, job_id: str) -> Response:
        form = await form_of(request)
        if isinstance(form, Response):
            return form
        try:
            text = _one(form, "DESTRUCTION")
            if text is None:
                raise ParameterProblem("give DESTRUCTION=<ISO 8601 time>")
            when = parse_time(text, "DESTRUCTION")
        except ParameterProblem as exc:
            return error(str(exc), 400)
        current = await load(request, job_id, details=False)
        if current is None:
            return no_job(job_id)
        async with request.app.state.pool.connection() as conn:
            await store.set_destruction(conn, job_id, kind.name, when, kind.retention_hard)
        return see(job_url(request, job_id))

    # ---- quote, owner, error ----

    @router.get("/{job_id}/quote", summary="Predicted completion time (empty: not known)")
    async def get_quote(request: Request, job_id: str) -> Response:
        current = await load(request, job_id, details=False)
        if current is None:
            return no_job(job_id)
        return Response("", media_type=TEXT)

    @router.get("/{job_id}/owner", summary="The job's owner (empty: anonymous)")
    async def get_owner(request: Request, job_id: str) -> Response:
        current = await load(request, job_id, details=False)
        if current is None:
            return no_job(job_id)
        return Response(current.owner_id or "", media_type=TEXT)

    @router.get("/{job_id}/error", summary="The error document of a job in phase ERROR")
    async def get_error(request: Request, job_id: str) -> Response:
        current = await load(request, job_id, details=False)
        if current is None:
            return no_job(job_id)
        if current.phase == ERROR:
            body, media_type = kind.error_document(current.error_message or "the job failed")
            return Response(body, media_type=media_type)
        if current.phase == ABORTED:
            body, media_type = kind.error_document("the job was aborted")
            return Response(body, media_type=media_type)
        return error(f"the job has no error: it is {current.phase}", 404)

    # ---- parameters, results ----

    @router.get("/{job_id}/parameters", summary="The job's parameters")
    async def get_parameters(request: Request, job_id: str) -> Response:
        current = await load(request, job_id)
        if current is None:
            return no_job(job_id)
        return Response(parameters_document(current), media_type=XML)

    @router.post("/{job_id}/parameters", summary="Set parameters of a PENDING job")
    async def post_parameters(request: Request, job_id: str) -> Response:
        form = await form_of(request, kind.max_request_bytes)
        if isinstance(form, Response):
            return form
        current = await load(request, job_id, details=False)
        if current is None:
            await form.close()
            return no_job(job_id)
        try:
            params = [(k, v) for k, v in form.items() if k.lower() != "phase"]
            if kind.prepare is not None:
                folder = job_dir(request.app.state.settings.data_dir, job_id)
                params = await kind.prepare(params, form.files, folder)
            run_id = _one(form, "RUNID")
        except ParameterProblem as exc:
            return error(str(exc), 400)
        finally:
            await form.close()
        async with request.app.state.pool.connection() as conn:
            if not await store.set_parameters(conn, job_id, kind.name, params):
                return error(
                    f"parameters can change only while the job is PENDING; it is {current.phase}",
                    409,
                )
            if run_id is not None:
                await store.set_run_id(conn, job_id, kind.name, run_id)
        return see(job_url(request, job_id))

    @router.get("/{job_id}/results", summary="The job's results")
    async def get_results(request: Request, job_id: str) -> Response:
        current = await load(request, job_id)
        if current is None:
            return no_job(job_id)
        return Response(results_document(current, _result_href(request, job_id)), media_type=XML)

    @router.get("/{job_id}/results/{result_id}", summary="One result file")
    async def get_result(request: Request, job_id: str, result_id: str) -> Response:
        current = await load(request, job_id)
        if current is None:
            return no_job(job_id)
        found = [r for r in current.results if r.result_id == result_id]
        if not found:
            names = ", ".join(r.result_id for r in current.results) or "none yet"
            return error(
                f"job {job_id} has no result {result_id!r} (phase {current.phase}; "
                f"results: {names})",
                404,
            )
        result = found[0]
        path = job_dir(request.app.state.settings.data_dir, job_id) / result.file_name
        if not path.is_file():
            log.error("result file %s of job %s is missing", path, job_id)
            return error("the result file is missing from the results area; run the job again", 410)
        return FileResponse(
            path,
            media_type=result.mime_type,
            headers={"Content-Disposition": f'inline; filename="{result.file_name}"'},
        )

    return router


def store_id_ok(job_id: str) -> bool:
    """Job ids are lower-case hex; anything else cannot be a job (and never reaches SQL)."""
    return 8 <= len(job_id) <= 64 and all(c in "0123456789abcdef" for c in job_id)
