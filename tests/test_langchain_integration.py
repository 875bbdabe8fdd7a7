"""memstore.integrations.langchain: a LangChain app keeps its chat history in memstore by changing one import."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from memstore import InvalidInput
from memstore.integrations.langchain import MemstoreChatMessageHistory


def plain(messages: list[BaseMessage]) -> list[tuple[str, str]]:
    return [(m.type, m.content) for m in messages]


def same_steps(history) -> list:
    """What a LangChain app does with a history; each step's result is compared with LangChain's own class."""
    seen = [plain(history.messages)]
    history.add_user_message("My name is Ada.")
    history.add_ai_message("Hello Ada.")
    seen.append(plain(history.messages))
    history.add_messages([HumanMessage("I like tea <b>hot</b> 🍵"), AIMessage("Noted.")])
    history.add_message(HumanMessage("What do I like?"))
    seen.append(plain(history.messages))
    history.clear()
    seen.append(plain(history.messages))
    history.add_messages([HumanMessage("again"), AIMessage("yes")])
    seen.append(plain(history.messages))

    async def async_steps():
        await history.aadd_messages([HumanMessage("async"), AIMessage("ok")])
        got = plain(await history.aget_messages())
        await history.aclear()
        return got, plain(await history.aget_messages())

    seen.append(asyncio.run(async_steps()))
    return seen


def test_it_behaves_like_langchains_own_history(sql_store):
    ours = MemstoreChatMessageHistory("s1", store=sql_store, user_id="alice")
    assert same_steps(ours) == same_steps(InMemoryChatMessageHistory())


def test_sessions_persist_and_appear_in_memory_lab(tmp_path):
    url = f"sqlite:///{tmp_path / 'memorylab.db'}"
    first = MemstoreChatMessageHistory("support-42", database_url=url)
    first.add_messages([HumanMessage("Where is my order?"), AIMessage("On its way.")])
    first.clear()  # Memory Lab's Clear memory: the transcript stays
    first.add_messages([HumanMessage("Thanks"), AIMessage("You're welcome.")])
    again = MemstoreChatMessageHistory("support-42", database_url=url)  # another process, later
    assert plain(again.messages) == [("human", "Thanks"), ("ai", "You're welcome.")]
    conversations = again.store.list_conversations("local")
    assert [(c.title, c.message_count, c.memory_cleared) for c in conversations] == [("support-42", 4, True)]
    assert MemstoreChatMessageHistory("support-42", database_url=url, user_id="bob").messages == []


def test_bounded_reads_return_the_newest_whole_turns(sql_store):
    full = MemstoreChatMessageHistory("long", store=sql_store)
    for n in range(1, 61):
        full.add_messages([HumanMessage(f"question {n}"), AIMessage(f"answer {n} " + "word " * 20)])
    window = MemstoreChatMessageHistory("long", store=sql_store, window_turns=3)
    assert plain(window.messages) == [
        (kind, f"{word} {n}" + (" " + "word " * 20 if kind == "ai" else ""))
        for n in (58, 59, 60)
        for kind, word in (("human", "question"), ("ai", "answer"))
    ]
    capped = MemstoreChatMessageHistory("long", store=sql_store, max_tokens=100)
    got = capped.messages
    assert 0 < len(got) < 10 and len(got) % 2 == 0 and got[-1].content.startswith("answer 60")
    assert len(full.messages) == 120


def test_a_runnable_with_message_history_round_trip(sql_store):
    """LangChain's RunnableWithMessageHistory over memstore: the model sees the earlier turns."""
    seen_by_model: list[list[tuple[str, str]]] = []

    def model(prompt) -> AIMessage:
        messages = prompt.to_messages()
        seen_by_model.append(plain(messages))
        return AIMessage(f"reply {len(seen_by_model)}")

    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are helpful."), MessagesPlaceholder("history"), ("human", "{input}")]
    )
    chain = RunnableWithMessageHistory(
        prompt | RunnableLambda(model),
        lambda session_id: MemstoreChatMessageHistory(session_id, store=sql_store, window_turns=2),
        input_messages_key="input",
        history_messages_key="history",
    )
    config = {"configurable": {"session_id": "web-7"}}
    for text in ("My name is Ada.", "I live in Oslo.", "I like tea.", "Who am I?"):
        chain.invoke({"input": text}, config=config)
    assert seen_by_model[1] == [
        ("system", "You are helpful."),
        ("human", "My name is Ada."),
        ("ai", "reply 1"),
        ("human", "I live in Oslo."),
    ]
    assert seen_by_model[3][1:] == [  # two turns of window: the name is gone, as Memory Lab's window shows it
        ("human", "I live in Oslo."),
        ("ai", "reply 2"),
        ("human", "I like tea."),
        ("ai", "reply 3"),
        ("human", "Who am I?"),
    ]
    conv = sql_store.list_conversations("local")[0]
    assert (conv.title, conv.message_count, conv.settings.memory_type) == ("web-7", 8, "window")


def test_refused_messages_store_nothing_and_a_deleted_session_starts_again(sql_store):
    history = MemstoreChatMessageHistory("s", store=sql_store)
    history.add_messages([HumanMessage("kept"), AIMessage("yes")])
    with pytest.raises(InvalidInput, match="'system' message is not stored"):
        history.add_messages([HumanMessage("not kept"), SystemMessage("Be brief.")])
    assert plain(history.messages) == [("human", "kept"), ("ai", "yes")]
    sql_store.delete_conversation("local", history.conversation_id)  # deleted on the Conversations page
    assert history.messages == []
    history.add_messages([HumanMessage("new start")])
    assert plain(history.messages) == [("human", "new start")]
    with pytest.raises(InvalidInput):
        MemstoreChatMessageHistory("  ", store=sql_store)
