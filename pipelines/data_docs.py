"""The task that turns a run's GX validations into its Data Docs site, and keeps the site count bounded."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact
from prefect.cache_policies import NO_CACHE

from core.settings import Settings
from jobs.quality import build_data_docs, prune_data_docs


@task(cache_policy=NO_CACHE)
def data_docs(run_id: str, settings: Settings) -> str | None:
    """Build `<docs root>/<run_id>/index.html` and return it as a file:// URL (None if nothing was validated)."""
    logger = get_run_logger()
    root = settings.docs_root()
    try:
        index = build_data_docs(run_id, root / run_id)
        prune_data_docs(root, settings.docs_keep_runs)
    except Exception as exc:  # noqa: BLE001 - the verdicts are in dq_results; a broken page must not fail the run
        logger.error("Data Docs for %s could not be built: %s", run_id, exc)
        return None
    if index is None:
        return None
    url = index.as_uri()
    logger.info("data docs: %s", url)
    # Also on the flow run's page in the Prefect UI (a browser may ask before following file://).
    create_link_artifact(link=url, link_text=f"Data Docs of {run_id}", description="GX Data Docs")
    return url
