"""``/metrics``: the cluster in the Prometheus text format (see ``prometheus.py``).

It asks for the API's credentials, as every route but the probes does: the figures name
queues, hosts, models and money, which are nobody's business outside. Prometheus sends
the token with ``authorization: {credentials: <token>}`` in its scrape config; in
development the loopback exemption of ``auth.py`` applies here too.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from docmill.web.deps import ContextDep, authorize
from docmill.web.job_totals import JobTotals
from docmill.web.prometheus import render_metrics
from docmill.web.schemas import ErrorBody

router = APIRouter(tags=["metrics"], dependencies=[Depends(authorize)])


@router.get(
    "/metrics",
    response_class=Response,
    summary="Queues, jobs, workers, documents and LLM use, for Prometheus",
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        401: {"model": ErrorBody, "description": "No valid bearer token."},
    },
)
async def metrics(request: Request, context: ContextDep) -> Response:
    """The Prometheus text exposition format (version 0.0.4)."""
    totals: JobTotals = request.app.state.job_totals
    return Response(await render_metrics(context, totals), media_type=CONTENT_TYPE_PLAIN_0_0_4)
