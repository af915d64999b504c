"""Report: one person's self-contained HTML report, saved with the run and downloadable."""

import streamlit as st

from emocore import ui
from emocore.reporting.report import chromium_path, render_pdf, write_subject_report

s = ui.page("Report")
ctx = ui.require_run(s)
subject = ui.subject_picker(ctx, assessed=True)
ui.verdict_banner(ctx, subject)  # what the report's page 1 says, first here too
path = ctx.registry.run_dir(ctx.run_id) / "reports" / f"sub-{subject}.html"
st.markdown(
    f"Report of **sub-{subject}** in run **{ctx.run_id}**: page 1 is the person's verdict "
    "(the primary analysis, what the test could have found, and on synthetic data who was "
    "planted); then the findings per design (the exploratory ones labelled), model version and "
    "data provenance, and per design accuracy against the other people with split and chance, "
    "what each emotion was taken for, misclassified scenes and the timeline. Opens offline and "
    "runs no script."
)
if ctx.registry.read_only:
    st.caption(
        f"The registry {ctx.registry.root} is read-only, so no report can be saved with the run; "
        "copy the registry to a writable folder to build one."
    )
if st.button(
    "Build report" if not path.exists() else "Rebuild report",
    type="primary",
    disabled=ctx.registry.read_only,
):
    cache, _ = ui.loaders.cache_or_none(s)
    with st.spinner("writing the report"), ui.guard():
        path = write_subject_report(ctx.registry, ctx.run_id, subject, cache)
    if chromium_path() is not None:
        with st.spinner("printing it to PDF"), ui.guard():
            render_pdf(path)
    st.success(f"Saved to {path}")
if path.exists():
    st.download_button(
        f"Download sub-{subject}.html",
        path.read_bytes(),
        file_name=f"emocore-{ctx.run_id}-sub-{subject}.html",
        mime="text/html",
    )
    pdf = path.with_suffix(".pdf")
    if chromium_path() is None:
        st.info(
            "PDF export is not available on this machine: it needs a headless chromium "
            "(`apt-get install chromium`). Download the HTML and print it to PDF from a browser; "
            "its layout is made for printing."
        )
    elif pdf.exists() and pdf.stat().st_mtime >= path.stat().st_mtime:
        st.download_button(
            f"Download sub-{subject}.pdf",
            pdf.read_bytes(),
            file_name=f"emocore-{ctx.run_id}-sub-{subject}.pdf",
            mime="application/pdf",
        )
    else:
        st.caption("Press **Rebuild report** to make its PDF too.")
    st.caption(f"Stored at `{path}` and recorded in the registry (kind 'report').")
