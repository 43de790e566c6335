"""UWS 1.1 XML documents: job, results, parameters (vo-models) and the job list (streamed).

The job list is written directly as text, one jobref at a time from a database cursor: building
a pydantic model per job would cost seconds for 100,000 jobs, and the list must stay cheap.
Both forms are checked against the UWS 1.1 schema in the tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

from lxml import etree
from pydantic_xml import BaseXmlModel, element
from vo_models.uws.models import (
    NSMAP,
    ErrorSummary,
    JobSummary,
    Parameter,
    ResultReference,
    Results,
)
from vo_models.uws.types import ErrorType, ExecutionPhase

from escape_vo.uws.model import ERROR, Job

UWS_NS = NSMAP["uws"]
XML_DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n"


class JobParameters(BaseXmlModel, tag="parameters", ns="uws", nsmap=NSMAP):
    """uws:parameters with whatever parameters the job has (the vo-models base class wants
    one declared field per parameter name)."""

    parameter: list[Parameter] = element(tag="parameter", default_factory=list)


def iso(value: datetime | None) -> str:
    """UTC, millisecond precision, trailing Z (as UWS clients expect); '' for None."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parameters(job: Job) -> JobParameters:
    return JobParameters(parameter=[Parameter(id=n, value=v) for n, v in job.parameters])


def _results(job: Job, result_href: Callable[[str], str]) -> Results:
    return Results(
        results=[
            ResultReference(
                id=r.result_id, href=result_href(r.result_id), size=r.size, mime_type=r.mime_type
            )
            for r in job.results
        ]
    )


def _to_bytes(model: BaseXmlModel, drop_empty: tuple[str, ...] = ()) -> bytes:
    tree = model.to_xml_tree(skip_empty=False)
    for name in drop_empty:  # optional elements with no value are left out, not left empty
        for el in tree.findall(f"{{{UWS_NS}}}{name}"):
            if not (el.text or len(el)):
                tree.remove(el)
    return etree.tostring(tree, encoding="UTF-8", xml_declaration=True)


def job_document(job: Job, result_href: Callable[[str], str]) -> bytes:
    summary = JobSummary[JobParameters](
        job_id=job.job_id,
        run_id=job.run_id,
        owner_id=job.owner_id,
        phase=ExecutionPhase(job.phase),
        quote=None,
        creation_time=job.creation_time,
        start_time=job.start_time,
        end_time=job.end_time,
        execution_duration=job.execution_duration,
        destruction=job.destruction,
        parameters=_parameters(job),
        results=_results(job, result_href),
        error_summary=(
            ErrorSummary(
                message=job.error_message or "the job failed",
                type=ErrorType.FATAL if job.error_type == "fatal" else ErrorType.TRANSIENT,
                has_detail=True,
            )
            if job.phase == ERROR
            else None
        ),
    )
    return _to_bytes(summary, drop_empty=("runId", "errorSummary", "jobInfo"))


def results_document(job: Job, result_href: Callable[[str], str]) -> bytes:
    return _to_bytes(_results(job, result_href))


def parameters_document(job: Job) -> bytes:
    return _to_bytes(_parameters(job))


async def jobs_document(
    rows: AsyncIterator[tuple], job_href: Callable[[str], str]
) -> AsyncIterator[bytes]:
    """uws:jobs from (job_id, phase, run_id, owner_id, creation_time) rows, in chunks."""
    yield (
        XML_DECLARATION + f'<uws:jobs xmlns:uws="{UWS_NS}" xmlns:xlink="{NSMAP["xlink"]}" '
        f'xmlns:xsi="{NSMAP["xsi"]}" version="1.1">\n'
    ).encode()
    chunk: list[str] = []
    async for job_id, phase, run_id, owner_id, created in rows:
        run = f"<uws:runId>{escape(run_id)}</uws:runId>" if run_id is not None else ""
        owner = (
            f"<uws:ownerId>{escape(owner_id)}</uws:ownerId>"
            if owner_id is not None
            else '<uws:ownerId xsi:nil="true"/>'
        )
        chunk.append(
            f'<uws:jobref id={quoteattr(job_id)} xlink:type="simple" '
            f"xlink:href={quoteattr(job_href(job_id))}><uws:phase>{phase}</uws:phase>{run}"
            f"{owner}<uws:creationTime>{iso(created)}</uws:creationTime></uws:jobref>\n"
        )
        if len(chunk) >= 500:
            yield "".join(chunk).encode()
            chunk = []
    chunk.append("</uws:jobs>\n")
    yield "".join(chunk).encode()
