"""The anchor for bench/e2e.py: the streamlit-agent memory demo, as LangChain's Streamlit guide builds it.

LangChain's ConversationBufferMemory over StreamlitChatMessageHistory, every message redrawn on each
rerun, the reply streamed from ChatOpenAI, and the stored messages as JSON in an expander (its only
"memory panel"). ANCHOR_SEED_MESSAGES seeds each new session with that many messages, the way a
long-running session would hold them. Run by bench/e2e.py; not part of Memory Lab.
"""

import os

import streamlit as st
from langchain_classic.memory import ConversationBufferMemory
from langchain_community.chat_message_histories import StreamlitChatMessageHistory
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_openai import ChatOpenAI

st.set_page_config(page_title="LangChain memory demo")
st.title("StreamlitChatMessageHistory")

history = StreamlitChatMessageHistory(key="langchain_messages")
memory = ConversationBufferMemory(chat_memory=history, return_messages=True)
if len(history.messages) == 0:
    seed = int(os.environ.get("ANCHOR_SEED_MESSAGES", "0"))
    text = os.environ.get("ANCHOR_SEED_TEXT", "How can I help you?")
    history.add_messages([HumanMessage(text) if i % 2 == 0 else AIMessage(text) for i in range(seed)])
    if seed == 0:
        history.add_ai_message("How can I help you?")

view_messages = st.expander("View the message contents in session state")
prompt = ChatPromptTemplate.from_messages(
    [
        ("system", "You are an AI chatbot having a conversation with a human."),
        MessagesPlaceholder(variable_name="history"),
        ("human", "{question}"),
    ]
)
chain = prompt | ChatOpenAI(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"), streaming=True)

for msg in history.messages:
    st.chat_message(msg.type).write(msg.content)

if question := st.chat_input():
    st.chat_message("human").write(question)
    variables = memory.load_memory_variables({})
    with st.chat_message("ai"):
        reply = st.write_stream(
            chunk.content for chunk in chain.stream({"history": variables["history"], "question": question})
        )
    memory.save_context({"input": question}, {"output": reply})

with view_messages:
    view_messages.json(st.session_state.langchain_messages)
