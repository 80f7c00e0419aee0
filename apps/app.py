"""The playground's Streamlit app: ``streamlit run apps/app.py`` (or ``playground app``).

One entry file: it sets up the page, draws the shared sidebar and runs the page chosen in
the navigation. The pages live in ``apps/views/`` and stay thin: widgets -> config ->
library call -> drawing. The folder is deliberately not called ``pages/``: Streamlit treats
a ``pages/`` folder beside the entry file as an old-style multipage app, so a deep link such
as ``/runs`` on a freshly started server would run the page on its own, without this file
(no sidebar, no page config); AppTest reruns would do the same. Once an account exists, every
page sits behind the sign-in form of ``login.py``.
"""

import streamlit as st
from background import draw_job_list
from common import draw_sidebar, navigation_pages
from login import draw_account, sign_in_page, signed_out

st.set_page_config(page_title="playground", page_icon=":material/science:", layout="wide")
locked = signed_out()  # an account exists and nobody is signed in
page = st.navigation(  # every page listed: annotators must find Annotate
    navigation_pages(), position="hidden" if locked else "sidebar", expanded=True
)
if locked:
    sign_in_page()  # the form and nothing else; stops the run
draw_account()
settings = draw_sidebar()
page.run()
draw_job_list(settings)  # after the page: a job it has just started is listed
