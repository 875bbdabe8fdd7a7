"""Memory Lab's Streamlit UI: each file draws one part of the screen; every decision is made in memstore.

page.py           every page's first lines: title, icon, login, banners, the model picker
resources.py      settings, the cached database, outbox, embedder (one per app process)
session.py        what this browser session holds: the open conversation, temporary chats, session facts
render.py         the only two ways stored text reaches the page: literal, or model Markdown (capped)
words.py          labels and one-line sentences about memory types, ledger rows and preference changes
models.py         the sidebar's model picker and the download list
sidebar.py        the chat page's sidebar: conversations, memory type and size, session facts
transcript.py     the chat: messages, the turn as it streams, retries, forgetting a message, "Memory updated"
unsaved.py        the outbox: what the database refused, saved only into the database it belongs to
importing.py      the Conversations page's import: source, preview, look inside, import
tour.py           the first-run tour on the chat page
panel.py          the memory panel: what memory holds, the next and last requests, summary call, timeline
compare_views.py  replays side by side: charts, totals, requests per turn, fact survival, diffs
"""
