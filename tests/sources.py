"""Other apps' memory for the import tests, written by the real libraries (and ChatGPT's published export format)."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_example_lesson() -> str:
    """The lesson file the README's "Writing a lesson" shows: what a teacher would copy."""
    text = README.read_text("utf-8")
    found = re.search(r"## Writing a lesson.*?```json\n(.*?)```", text, re.S)
    assert found, "the README shows no example lesson"
    return found.group(1)


def langchain_sql_db(path: Path, sessions: dict[str, list], *, table: str = "message_store") -> str:
    """A database written by langchain-community's SQLChatMessageHistory; returns its URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # langchain-community announces its sunset on import
        from langchain_community.chat_message_histories import SQLChatMessageHistory

    url = f"sqlite:///{path}"
    for session_id, messages in sessions.items():
        history = SQLChatMessageHistory(session_id=session_id, connection=url, table_name=table)
        history.add_messages(messages)
    return url


def langgraph_db(path: Path, threads: dict[str, list[str]], replies: list[str]) -> None:
    """A LangGraph chat graph with SqliteSaver checkpoints: each thread's user messages answered by a fake model."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, HumanMessage
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import START, MessagesState, StateGraph

    model = GenericFakeChatModel(messages=iter([AIMessage(r) for r in replies]))

    def chat(state: MessagesState) -> dict:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("chat", chat)
    graph.add_edge(START, "chat")
    with SqliteSaver.from_conn_string(str(path)) as saver:
        app = graph.compile(checkpointer=saver)
        for thread, questions in threads.items():
            for question in questions:
                app.invoke({"messages": [HumanMessage(question)]}, {"configurable": {"thread_id": thread}})


def langgraph_update(path: Path, thread: str, messages: list) -> None:
    """Add messages to a thread's state as a graph would (a tool result, a system message)."""
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import START, MessagesState, StateGraph

    graph = StateGraph(MessagesState)
    graph.add_node("chat", lambda state: {})
    graph.add_edge(START, "chat")
    with SqliteSaver.from_conn_string(str(path)) as saver:
        app = graph.compile(checkpointer=saver)
        app.update_state({"configurable": {"thread_id": thread}}, {"messages": messages})


def chatgpt_conversation(
    title: str,
    turns: list[tuple[str, str]],
    *,
    conversation_id: str,
    start: float = 1.7e9,
    edited_first: str | None = None,
    extra: list[dict] | None = None,
) -> dict:
    """One conversation as ChatGPT's export writes it: a message tree with a hidden system root, and current_node.

    With `edited_first`, the first user message was edited: the old branch stays in the tree, the edited one is
    current. `extra` nodes (tool calls, code, images) are put after the first reply.
    """
    mapping: dict[str, dict] = {}
    clock = [start]

    def node(node_id: str, parent: str | None, role: str | None, content: dict | None, **message_extra) -> str:
        clock[0] += 1
        message = None
        if role is not None:
            message = {
                "id": node_id,
                "author": {"role": role, "name": message_extra.pop("name", None), "metadata": {}},
                "create_time": clock[0],
                "update_time": None,
                "content": content,
                "status": "finished_successfully",
                "end_turn": role == "assistant",
                "weight": 1.0,
                "metadata": message_extra.pop("metadata", {}),
                "recipient": message_extra.pop("recipient", "all"),
            }
        mapping[node_id] = {"id": node_id, "message": message, "parent": parent, "children": []}
        if parent is not None:
            mapping[parent]["children"].append(node_id)
        return node_id

    root = node("root", None, None, None)
    hidden = node(
        "sys",
        root,
        "system",
        {"content_type": "text", "parts": [""]},
        metadata={"is_visually_hidden_from_conversation": True},
    )
    parent = hidden
    if edited_first is not None:
        old = node("old-u", parent, "user", {"content_type": "text", "parts": [edited_first]})
        node("old-a", old, "assistant", {"content_type": "text", "parts": ["(answer to the old question)"]})
    for n, (question, answer) in enumerate(turns):
        parent = node(f"u{n}", parent, "user", {"content_type": "text", "parts": [question]})
        parent = node(f"a{n}", parent, "assistant", {"content_type": "text", "parts": [answer]})
        if n == 0:
            for i, item in enumerate(extra or []):
                parent = node(f"x{i}", parent, **item)
    return {
        "title": title,
        "create_time": start,
        "update_time": clock[0],
        "mapping": mapping,
        "moderation_results": [],
        "current_node": parent,
        "plugin_ids": None,
        "conversation_id": conversation_id,
        "conversation_template_id": None,
        "gizmo_id": None,
        "is_archived": False,
        "safe_urls": [],
        "default_model_slug": "gpt-4o",
        "id": conversation_id,
    }


def write_chatgpt_export(path: Path, conversations: list[dict]) -> Path:
    path.write_text(json.dumps(conversations), encoding="utf-8")
    return path
