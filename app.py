"""Memory Lab: chat with a model beside a live view of what its memory holds and sends (the entry: navigation)."""

import streamlit as st

from ui.page import ICON

# Set before the navigation: otherwise the page's Material icon becomes the favicon, fetched from a font host.
st.set_page_config(page_title="Memory Lab", page_icon=ICON, layout="wide")

PAGES = [
    st.Page("app_pages/chat.py", title="Chat", icon=":material/chat:", default=True),
    st.Page("app_pages/preferences.py", title="Preferences", icon=":material/tune:", url_path="preferences"),
    st.Page("app_pages/conversations.py", title="Conversations", icon=":material/forum:", url_path="conversations"),
    st.Page("app_pages/model_calls.py", title="Model calls", icon=":material/receipt_long:", url_path="model_calls"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    st.Page("app_pages/lessons.py", title="Lessons", icon=":material/school:", url_path="lessons"),
]

st.navigation(PAGES).run()
