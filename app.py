"""Memory Lab: chat with a model beside a live view of what its memory holds and sends (the entry: navigation)."""

import streamlit as st

PAGES = [
    st.Page("pages/chat.py", title="Chat", icon=":material/chat:", default=True),
    st.Page("pages/preferences.py", title="Preferences", icon=":material/tune:", url_path="Preferences"),
    st.Page("pages/conversations.py", title="Conversations", icon=":material/forum:", url_path="Conversations"),
    st.Page("pages/model_calls.py", title="Model calls", icon=":material/receipt_long:", url_path="Model_calls"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="Compare"),
    st.Page("pages/lessons.py", title="Lessons", icon=":material/school:", url_path="Lessons"),
]

st.navigation(PAGES).run()
