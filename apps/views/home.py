"""Home: what the playground is, and one card per technique."""

import streamlit as st

from playground.core.registry import TECHNIQUES

st.title("Deep-learning playground")
st.markdown(
    "A hands-on playground of deep-learning techniques in PyTorch. Every technique is a small "
    "library you can import, a recipe you can run from the command line "
    "(`playground run recipes/<name>.toml`) and a page here where you change the settings, run it "
    "and look at the results. Runs are written to the runs root in the sidebar, so you can "
    "compare them later on the Runs page."
)

left, right = st.columns(2)
left.page_link(
    "views/data_explorer.py", label="Data explorer: look at the datasets", icon=":material/image_search:"
)
right.page_link("views/runs.py", label="Runs: open past results", icon=":material/history:")

st.header("Techniques")
columns = st.columns(2)
for index, technique in enumerate(TECHNIQUES):
    with columns[index % 2].container(border=True):
        st.markdown(f"#### {technique.title}")
        st.markdown(technique.summary)
        st.caption(technique.paper)
        st.page_link(technique.page, label=f"Open {technique.title}", icon=":material/arrow_forward:")
