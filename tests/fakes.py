"""Test doubles: the scripted client memstore ships for tests and benchmarks."""
from memstore.llm.scripted import Cut, ScriptedClient as FakeClient, ScriptedStream as FakeStream

__all__ = ["Cut", "FakeClient", "FakeStream"]
