"""Template variables: Prometheus label values, and opdiag-fed values via the JSON datasource.

Query variables refresh on time-range change (2), as dashboard-linter requires. Selectors in
``queries.selectors`` use the same names.
"""

from __future__ import annotations

import grafanalib.core as G
from opdiag.settings import Settings

from opdiag_dashboards import datasources as ds
from opdiag_dashboards import targets
from opdiag_dashboards.queries import opdiag as oq
from opdiag_dashboards.queries import promql
from opdiag_dashboards.queries import selectors as sel

ALL = "$__all"


def _prom(
    settings: Settings,
    name: str,
    label: str,
    query: str,
    *,
    all_value: str = ".*",
    multi: bool = True,
) -> G.Template:
    return G.Template(
        name=name,
        label=label,
        query=query,
        dataSource=ds.prometheus_ref(settings),
        refresh=G.REFRESH_ON_TIME_RANGE_CHANGE,
        includeAll=True,
        allValue=all_value,
        multi=multi,
        default=ALL,
    )


def environment(settings: Settings) -> G.Template:
    """Environment (all = `.*`, which also matches series without the label)."""
    return _prom(
        settings, sel.ENVIRONMENT, "Environment", promql.environments(settings), multi=False
    )


def job(settings: Settings) -> G.Template:
    """KTRDR scrape jobs; "All" means the configured regex, never every job in Prometheus."""
    return _prom(
        settings,
        sel.JOB,
        "Job",
        promql.jobs(settings),
        all_value=settings.dashboards.service_job_regex,
    )


def instance(settings: Settings) -> G.Template:
    """Instances of the selected jobs."""
    return _prom(settings, sel.INSTANCE, "Instance", promql.instances(settings))


def worker_job(settings: Settings) -> G.Template:
    """Worker scrape jobs; "All" means the configured worker regex."""
    return _prom(
        settings,
        sel.WORKER_JOB,
        "Worker job",
        promql.worker_jobs(settings),
        all_value=settings.dashboards.worker_job_regex,
    )


def worker_instance(settings: Settings) -> G.Template:
    """Every worker instance of the selected jobs (no port regex)."""
    return _prom(settings, sel.WORKER_INSTANCE, "Worker", promql.worker_instances(settings))


def worker_type(settings: Settings) -> G.Template:
    """Worker types exported by the registry."""
    return _prom(settings, sel.WORKER_TYPE, "Worker type", promql.worker_types(settings))


def _opdiag_query(
    settings: Settings, json_datasource: str, url: str, root: str
) -> dict[str, object]:
    """The stored variable query of the JSON datasource for an opdiag URL."""
    if json_datasource == "simpod":
        name = url.split("/variables/", 1)[1].split("?", 1)[0] if "/variables/" in url else url
        return {"format": "string", "query": name, "refId": "variable"}
    target = targets.infinity(settings, url, "variables", root_selector=root, ref_id="variable")
    target.pop("datasource")
    return {"queryType": "infinity", "query": "", "refId": "variable", "infinityQuery": target}


def _opdiag(
    settings: Settings,
    json_datasource: str,
    name: str,
    label: str,
    url: str,
    *,
    root: str = oq.ROWS,
    include_all: bool = True,
    multi: bool = False,
) -> G.Template:
    return G.Template(
        name=name,
        label=label,
        query=_opdiag_query(settings, json_datasource, url, root),
        dataSource=ds.opdiag_ref(settings, json_datasource),
        refresh=G.REFRESH_ON_TIME_RANGE_CHANGE,
        includeAll=include_all,
        # Single-select: Prometheus panels get `.*`, opdiag panels `${var:text}` = "All".
        allValue=".*" if include_all and not multi else None,
        multi=multi,
        default=ALL if include_all else None,
        sort=G.SORT_DISABLED if name == sel.OPERATION_ID else G.SORT_ALPHA_ASC,
    )


def operation_type(settings: Settings, json_datasource: str) -> G.Template:
    """Operation types opdiag saw in the range."""
    url = oq.variable_values(settings, "operation_types")
    return _opdiag(settings, json_datasource, sel.OPERATION_TYPE, "Operation type", url)


def verdict(settings: Settings, json_datasource: str) -> G.Template:
    """Verdict codes."""
    url = oq.variable_values(settings, "verdicts")
    return _opdiag(settings, json_datasource, sel.VERDICT, "Verdict", url)


def operation_id(settings: Settings, json_datasource: str) -> G.Template:
    """The operation to diagnose (links set it through `var-operation_id`)."""
    url = oq.variable_values(settings, "operation_ids")
    return _opdiag(settings, json_datasource, sel.OPERATION_ID, "Operation", url, include_all=False)


def trace_id(settings: Settings, json_datasource: str) -> G.Template:
    """The selected operation's traces (one trace panel repeats per value).

    Infinity splits the diagnosis row's ``trace_ids``; simpod's /variable serves no trace
    ids, so with simpod the variable is a text box (trace ids are also in the Summary panel).
    """
    if json_datasource == "simpod":
        return G.Template(name=sel.TRACE_ID, label="Trace", query="", type="textbox", default="")
    return _opdiag(
        settings,
        json_datasource,
        sel.TRACE_ID,
        "Trace",
        oq.diagnosis(settings),
        root=oq.TRACE_ID_ROWS,
        multi=True,
    )
