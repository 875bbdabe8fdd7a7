"""Test doubles: the scripted client memstore ships for tests and benchmarks."""

from memstore.llm.scripted import Cut
from memstore.llm.scripted import ScriptedClient as FakeClient
from memstore.llm.scripted import ScriptedStream as FakeStream

__all__ = ["Cut", "FakeClient", "FakeStream"]
