"""The chat turn: save the user's message, build the exact payload, stream the reply, commit."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from . import validation
from .config import Limits
from .embeddings import Embedder
from .errors import ConfigError, InvalidInput, LLMError, MemoryLabError, NotFound, StorageError
from .extraction import EntitiesUpdate, FactsUpdate, extract_facts, update_entities
from .facts import FactSet
from .llm import ChatClient, ReplyStream
from .memory import HistoryReader, MemoryView, get_memory_type, group_turns
from .outbox import Unsent, new_unsent
from .payload import Payload, build_payload
from .recall import LongTermMemory
from .records import CallDraft, ChatMessage, Conversation, MemorySettings, Message, MessageStatus, ModelCall, Usage
from .store_api import PreferenceStore, TranscriptStore
from .summarizer import CallCache, SummaryUpdate, fold_pending
from .titles import DEFAULT_TITLE
from .tokens import message_tokens

DEFAULT_FOLD_BUDGET_TOKENS = 2_000
RETRY_CLAIM_SLACK_S = 30.0  # a retry's claim outlives the call's own timeout by this much


@dataclass(frozen=True)
class TurnResult:
    """How a turn ended: the reply (complete, partial or failed) and its ledger row, or why they were not saved.

    When the database refused the reply, `unsaved` holds everything needed to save it later
    (Chat.save_unsent); when the conversation was deleted meanwhile, only the text is left to show.
    """

    reply: Message
    call: ModelCall | None
    error: LLMError | None
    save_error: str | None = None
    unsaved: Unsent | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.save_error is None

    @property
    def saved(self) -> bool:
        return self.save_error is None


def needs_retry(messages: Sequence[Message]) -> bool:
    """The newest turn of these messages has no complete reply (it failed, was cut short, or never ran)."""
    last_turn = messages[-1].turn
    replies = [m for m in messages if m.turn == last_turn and m.role == "assistant"]
    return not replies or replies[-1].status != "complete"


@dataclass(frozen=True)
class AfterTurn:
    """What memory did after a turn: the summary fold, facts saved about the user, entity notes written."""

    summary: SummaryUpdate | None = None
    facts: FactsUpdate | None = None
    entities: EntitiesUpdate | None = None

    def problems(self) -> list[str]:
        """A sentence for each part that did not work (or found nothing), to show under the transcript."""
        problems = []
        if self.summary is not None and self.summary.error is not None:
            problems.append(
                f"The summary could not be updated: {self.summary.error.message} It will catch up next turn."
            )
        if self.entities is not None and self.entities.error:
            problems.append(f"Entity notes were not updated this turn: {self.entities.error}.")
        elif self.entities is not None and not self.entities.entities:
            problems.append(
                "Entity notes: the model named no new facts about any entity this turn (its reply is in the Timeline)."
            )
        if self.facts is not None and self.facts.error:
            problems.append(f"No facts were saved this turn: {self.facts.error}.")
        return problems


class TurnRun:
    """One prepared turn; iterate `stream()` to get the reply's text as it arrives."""

    def __init__(
        self,
        chat: Chat,
        conversation: Conversation,
        user_message: Message,
        payload: Payload,
        summary_updates: tuple[SummaryUpdate, ...],
        params: Mapping[str, Any],
    ):
        self._chat = chat
        self.conversation = conversation
        self.user_message = user_message
        self.payload = payload
        self.summary_updates = summary_updates
        self.params = dict(params)
        self.result: TurnResult | None = None
        self.claimed = False  # a retry holds the turn's claim until it commits

    def stream(self) -> Iterator[str]:
        """Yield reply deltas; whatever happens, the attempt is stored before this generator ends."""
        if self.result is not None:
            raise InvalidInput("This turn has already run; retry it instead.")
        client = self._chat.client
        reply = client.stream_chat(self.payload.messages, params=self.params)
        error: LLMError | None = None
        try:
            for delta in reply:
                if delta:
                    yield delta
        except LLMError as exc:
            error = exc
        except GeneratorExit:  # the page stopped reading (a rerun or a stop button): keep what arrived
            self._commit(reply, LLMError("stopped", "The reply was stopped; what arrived is kept."))
            raise
        finally:
            reply.close()
        if error is None and not reply.text.strip():
            error = LLMError(
                "empty", f"{client.model} finished without writing anything. Retry, or pick another model."
            )
        self._commit(reply, error)

    def run(self) -> TurnResult:
        """Run the turn without streaming to a page (tests, scripts)."""
        for _ in self.stream():
            pass
        assert self.result is not None
        return self.result

    def _commit(self, reply: ReplyStream, error: LLMError | None) -> None:
        chat = self._chat
        client = chat.client
        counter = chat.counter
        text: str = reply.text or ""
        completion = reply.completion
        status: MessageStatus = "complete" if error is None else ("partial" if text else "failed")
        history_range = self.payload.view.history_range
        draft = CallDraft(
            purpose="chat",
            conversation_id=self.conversation.id,
            turn=self.user_message.turn,
            memory_type=self.payload.view.memory_type,
            model=client.model,
            provider=client.provider,
            host=client.host,
            params={**self.params, "stream": True},
            request=self.payload.messages,
            reply=text,
            finish_reason=completion.finish_reason if completion else None,
            usage=completion.usage if completion else Usage(),
            counted_prompt_tokens=self.payload.total_tokens,
            sections=self.payload.tokens_by_section(),
            history_from_turn=history_range[0] if history_range else None,
            history_to_turn=history_range[1] if history_range else None,
            latency_ms=completion.latency_ms if completion else reply.stopwatch.elapsed_ms(),
            first_token_ms=reply.stopwatch.first_token_ms,
            error_kind=error.kind if error else None,
            error=error.message if error else None,
            details=self.payload.details(),
        )
        tokens = counter.count(text)
        try:
            message, call = chat.store.add_reply(
                chat.user_id,
                self.conversation.id,
                self.user_message.turn,
                text,
                status=status,
                tokens=tokens,
                tokenizer=counter.name,
                error=error.message if error else None,
                call=draft,
                carried=carried_messages(self),
            )
        except NotFound:
            self.result = TurnResult(
                _unstored(self, text, status, error),
                None,
                error,
                save_error=(
                    "This conversation was deleted (in another tab or page) while the reply arrived, so the reply "
                    "was not saved; it is shown here so you can copy it."
                ),
            )
            return
        except StorageError as exc:
            unsaved = new_unsent(
                chat.user_id,
                self.conversation.id,
                "reply",
                text,
                str(exc),
                turn=self.user_message.turn,
                status=status,
                reply_error=error.message if error else None,
                tokens=tokens,
                tokenizer=counter.name,
                call=draft,
                database=chat.store.identity(),
            )
            self.result = TurnResult(
                _unstored(self, text, status, error),
                None,
                error,
                save_error=f"The reply arrived but could not be saved: {exc}",
                unsaved=unsaved,
            )
            return
        finally:
            if self.claimed:
                chat.release_claim(self.conversation.id, self.user_message.turn)
        self.result = TurnResult(message, call, error)


def carried_messages(run: TurnRun) -> dict[int, str]:
    """The stored messages whose text the turn's request carries, by id: the save redacts any forgotten meanwhile."""
    view = run.payload.view
    turns = [*view.turns, *(r.turn for r in view.recall.recalled)] if view.recall else list(view.turns)
    messages = [run.user_message, *(m for t in turns for m in (t.user, t.reply) if m is not None)]
    return {m.id: m.content for m in messages if m.id and m.content}


def _unstored(run: TurnRun, text: str, status: str, error: LLMError | None) -> Message:
    """The reply as a message that was not saved (id 0), so the page can still show it."""
    user = run.user_message
    return Message(
        id=0,
        conversation_id=user.conversation_id,
        seq=0,
        turn=user.turn,
        role="assistant",
        content=text,
        status=status,  # type: ignore[arg-type]
        tokens=0,
        tokenizer="",
        created_at=user.created_at,
        error=error.message if error else None,
    )


class Chat:
    """Turns for one user over one store and one model client."""

    def __init__(
        self,
        store: TranscriptStore,
        client: ChatClient,
        *,
        user_id: str,
        limits: Limits | None = None,
        fold_budget_tokens: int = DEFAULT_FOLD_BUDGET_TOKENS,
        params: Mapping[str, Any] | None = None,
        summary_cache: CallCache | None = None,
        embedder: Embedder | None = None,
        preferences: PreferenceStore | None = None,
    ):
        self.store = store
        self.client = client
        self.user_id = validation.user_id(user_id)
        self.limits: Limits = limits or getattr(store, "limits", None) or Limits()  # one setting: the store's
        self.counter = client.counter()
        self.fold_budget_tokens = fold_budget_tokens
        self.params = {**client.default_params, **(params or {})}
        self.summary_cache = summary_cache
        self.embedder = embedder  # retrieval memory: None means recall is unavailable
        self.preferences = preferences  # automatic facts are saved here (never for a temporary chat)

    # -- reading ----------------------------------------------------------------------------

    def view(
        self,
        conversation: Conversation,
        *,
        through_turn: int,
        settings: MemorySettings | None = None,
        explain: bool = True,
        query: str = "",
    ) -> MemoryView:
        """What the memory holds for a turn after `through_turn` whose message is `query`, under `settings`."""
        settings = settings or conversation.settings
        memory = get_memory_type(settings.memory_type)
        history = self._history(conversation, through_turn, explain=explain, query=query)
        view = memory.view(history, settings, context_tokens=self.client.context_tokens)
        if conversation.memory_from_turn > 1 and memory.name != "none":
            cleared = conversation.memory_from_turn - 1
            view = replace(
                view,
                notes=(
                    f"Memory was cleared after turn {cleared}: "
                    + (f"turns 1–{cleared} are" if cleared > 1 else "turn 1 is")
                    + " kept in the transcript but no longer used (no window, summary, entity note or recall "
                    "reaches back past it).",
                    *view.notes,
                ),
            )
        skipped = sorted(history.unanswered)
        if skipped and memory.name != "none":
            listed = ", ".join(map(str, skipped[-5:])) + (" and earlier" if len(skipped) > 5 else "")
            view = replace(
                view,
                notes=view.notes
                + (
                    f"Turn{'s' if len(skipped) > 1 else ''} {listed} got no reply, so "
                    f"{'they are' if len(skipped) > 1 else 'it is'} not sent and not counted in the window "
                    "(a request never holds two of your messages in a row).",
                ),
            )
        return view

    def preview(
        self, conversation_id: int, facts: FactSet, *, draft: str = "", settings: MemorySettings | None = None
    ) -> Payload:
        """What the next turn would send under `settings`; writes nothing and calls no model."""
        conversation = self.store.get_conversation(self.user_id, conversation_id)
        settings = settings or conversation.settings
        view = self.view(conversation, through_turn=conversation.last_turn, settings=settings, query=draft)
        return build_payload(settings, view, facts, draft, self.counter, context_tokens=self.client.context_tokens)

    def count_request(self, messages: Sequence[ChatMessage]) -> tuple[int, ...]:
        """Tokens of each message of a request, framing included, with this model's tokenizer."""
        return tuple(message_tokens(self.counter, m.content) for m in messages)

    def last_call(self, conversation_id: int, purpose: str = "chat") -> ModelCall | None:
        """The newest ledger row of a kind (chat or summary) in a conversation."""
        calls = self.store.list_calls(self.user_id, conversation_id=conversation_id, purpose=purpose, limit=1)
        return calls[0] if calls else None

    def last_chat_call(self, conversation_id: int) -> ModelCall | None:
        """The ledger row of the newest chat call in a conversation: what the last turn really sent."""
        return self.last_call(conversation_id, "chat")

    # -- writing ----------------------------------------------------------------------------

    def send(self, conversation_id: int, text: str, facts: FactSet) -> TurnRun:
        """Save the user's message first, bring the summary up to date, and prepare the call."""
        text = validation.message_text(text, self.limits)
        message, conversation = self.store.begin_turn(
            self.user_id, conversation_id, text, tokens=self.counter.count(text), tokenizer=self.counter.name
        )
        return self._prepare(conversation, message, facts)

    def send_unsent(self, item: Unsent, conversation_id: int, facts: FactSet) -> TurnRun:
        """Send a kept message again, into a conversation of the database that refused it (else InvalidInput)."""
        if item.kind != "message" or item.user_id != self.user_id:
            raise InvalidInput("Only a kept message of yours can be sent again.")
        item.check_belongs(self.store.identity())
        return self.send(conversation_id, item.text, facts)

    def retry(self, conversation_id: int, facts: FactSet) -> TurnRun:
        """Run the newest turn again when its reply failed or was cut short; the old attempt stays stored."""
        conversation = self.store.get_conversation(self.user_id, conversation_id)
        if conversation.last_turn == 0:
            raise InvalidInput("There is no turn to retry yet.")
        rows = self.store.turns_between(self.user_id, conversation_id, conversation.last_turn, conversation.last_turn)
        user = next((m for m in rows if m.role == "user"), None)
        replies = [m for m in rows if m.role == "assistant"]
        if user is None:
            raise InvalidInput("The newest turn has no message of yours to send again.")
        if replies and replies[-1].status == "complete":
            raise InvalidInput("The newest turn already has a complete reply.")
        hold_s = getattr(self.client, "timeout_s", 300.0) + RETRY_CLAIM_SLACK_S
        if not self.store.claim_retry(self.user_id, conversation_id, user.turn, hold_s=hold_s):
            raise InvalidInput("This turn is already being retried (in another tab); its reply will appear here.")
        try:
            run = self._prepare(conversation, user, facts)
        except BaseException:
            self.release_claim(conversation_id, user.turn)
            raise
        run.claimed = True
        return run

    def release_claim(self, conversation_id: int, turn: int) -> None:
        """End a retry's claim; a database that refuses leaves it to expire on its own."""
        try:
            self.store.release_retry(self.user_id, conversation_id, turn)
        except StorageError:
            pass

    def save_unsent(self, item: Unsent) -> Message:
        """Save a reply the database refused earlier, with its ledger row (raises StorageError or NotFound again)."""
        if item.kind != "reply" or item.turn is None or item.user_id != self.user_id:
            raise InvalidInput("Only a kept reply of yours can be saved again.")
        item.check_belongs(self.store.identity())  # the same conversation number in another database is not it
        message, _ = self.store.add_reply(
            self.user_id,
            item.conversation_id,
            item.turn,
            item.text,
            status=item.status,
            tokens=item.tokens,
            tokenizer=item.tokenizer,
            error=item.reply_error,
            call=item.call,
        )
        return message

    def replay_turn(self, conversation_id: int, text: str, reply: str, facts: FactSet) -> TurnRun:
        """A turn whose reply is already known: memory and summaries run as live, the chat model is not called."""
        run = self.send(conversation_id, text, facts)
        message, _ = self.store.add_reply(
            self.user_id,
            conversation_id,
            run.user_message.turn,
            reply,
            status="complete",
            tokens=self.counter.count(reply),
            tokenizer=self.counter.name,
        )
        run.result = TurnResult(message, None, None)
        return run

    def ask(self, payload: Payload, *, memory_type: str) -> str:
        """Send a prepared request outside any conversation (a lesson's question); it goes in the ledger."""
        reply = self.client.stream_chat(payload.messages, params=self.params)
        error: LLMError | None = None
        try:
            for _ in reply:
                pass
        except LLMError as exc:
            error = exc
        finally:
            reply.close()
        completion = reply.completion
        self.store.record_call(
            self.user_id,
            CallDraft(
                purpose="chat",
                conversation_id=None,
                turn=None,
                memory_type=memory_type,
                model=self.client.model,
                provider=self.client.provider,
                host=self.client.host,
                params={**self.params, "stream": True},
                request=payload.messages,
                reply=reply.text,
                finish_reason=completion.finish_reason if completion else None,
                usage=completion.usage if completion else Usage(),
                counted_prompt_tokens=payload.total_tokens,
                sections=payload.tokens_by_section(),
                latency_ms=reply.stopwatch.elapsed_ms(),
                first_token_ms=reply.stopwatch.first_token_ms,
                error_kind=error.kind if error else None,
                error=error.message if error else None,
            ),
        )
        if error is not None and not reply.text:
            raise error
        return reply.text

    def update_memory(self, conversation_id: int) -> SummaryUpdate | None:
        """After a turn: fold what the summary types need, so the next prompt is ready."""
        return self._fold_summary(self.store.get_conversation(self.user_id, conversation_id))

    def _fold_summary(self, conversation: Conversation) -> SummaryUpdate | None:
        if not get_memory_type(conversation.settings.memory_type).uses_summary:
            return None
        return self._fold(conversation, conversation.last_turn)[1]

    def after_turn(self, conversation_id: int, *, extract: bool = False) -> AfterTurn:
        """After a turn: fold the summary if the type has one, save facts the user stated (when `extract` is on and
        the chat is saved), and update entity notes under entity memory. Each step's calls go in the ledger."""
        conversation = self.store.get_conversation(self.user_id, conversation_id)
        memory = get_memory_type(conversation.settings.memory_type)
        summary = self._fold_summary(conversation)
        facts = entities = None
        wants_facts = extract and self.preferences is not None and not self.store.temporary
        if (wants_facts or memory.name == "entity") and conversation.last_turn:
            last = group_turns(
                self.store.turns_between(self.user_id, conversation_id, conversation.last_turn, conversation.last_turn),
                self.counter,
            )
            turn = last[0] if last and last[0].reply is not None else None
            # Each step stands alone: one that fails says so and the others still run.
            if turn is not None and self.preferences is not None and wants_facts:
                try:
                    facts = extract_facts(
                        self.store,
                        self.preferences,
                        self.client,
                        self.counter,
                        user_id=self.user_id,
                        turn=turn,
                        conversation_id=conversation_id,
                        memory_type=memory.name,
                        limits=self.limits,
                        cache=self.summary_cache,
                    )
                except MemoryLabError as exc:
                    facts = FactsUpdate((), None, str(exc))
            if turn is not None and memory.name == "entity":
                try:
                    entities = update_entities(
                        self.store,
                        self.client,
                        self.counter,
                        user_id=self.user_id,
                        turn=turn,
                        conversation_id=conversation_id,
                        memory_type=memory.name,
                        cache=self.summary_cache,
                    )
                except MemoryLabError as exc:
                    entities = EntitiesUpdate((), None, str(exc))
        return AfterTurn(summary, facts, entities)

    def update_settings(self, conversation_id: int, settings: MemorySettings) -> Conversation:
        """Switch type or sizes; it applies from the next turn and rewrites nothing stored."""
        return self.store.update_settings(self.user_id, conversation_id, settings)

    def new_conversation(self, title: str = DEFAULT_TITLE, settings: MemorySettings | None = None) -> Conversation:
        return self.store.create_conversation(self.user_id, title, settings or MemorySettings())

    # -- internals --------------------------------------------------------------------------

    def long_term(self, conversation_id: int, query: str = "") -> LongTermMemory:
        """Recall and entities of one conversation, with `query` as the new message."""
        return LongTermMemory(self.store, self.embedder, self.counter, self.user_id, conversation_id, query)

    def _history(
        self, conversation: Conversation, through_turn: int, *, explain: bool = True, query: str = ""
    ) -> HistoryReader:
        return HistoryReader(
            self.store,
            self.user_id,
            conversation.id,
            through_turn,
            self.counter,
            explain=explain,
            long_term=self.long_term(conversation.id, query),
            first_turn=conversation.memory_from_turn,
        )

    def _fold(
        self, conversation: Conversation, through_turn: int, *, explain: bool = True, query: str = ""
    ) -> tuple[MemoryView, SummaryUpdate | None]:
        """The memory's view after `through_turn`, folding pending turns into the summary first if needed."""
        view = self.view(conversation, through_turn=through_turn, explain=explain, query=query)
        if view.summary_pending is None:
            return view, None
        history = self._history(conversation, through_turn)
        update = fold_pending(
            self.store, self.client, history, view, budget_tokens=self.fold_budget_tokens, cache=self.summary_cache
        )
        return self.view(conversation, through_turn=through_turn, explain=explain, query=query), update

    def _prepare(self, conversation: Conversation, message: Message, facts: FactSet) -> TurnRun:
        through = message.turn - 1
        index_note: tuple[str, ...] = ()
        if conversation.settings.memory_type == "retrieval" and self.embedder is not None:
            try:  # embed the turns recall can reach that have no vector yet (each turn once, ever)
                self.long_term(conversation.id).index(through)
            except (LLMError, ConfigError) as exc:
                index_note = (f"New turns could not be indexed for recall: {exc}",)
        # One read of what the request needs (the panel's extras come from preview), unless a fold happened.
        view, update = self._fold(conversation, through, explain=False, query=message.content)
        updates = [update] if update is not None else []
        if index_note:
            view = replace(view, notes=view.notes + index_note)
        if updates and updates[0].error is not None:
            view = replace(view, notes=view.notes + (f"The summary could not be updated: {updates[0].error.message}",))
        payload = build_payload(
            conversation.settings, view, facts, message.content, self.counter, context_tokens=self.client.context_tokens
        )
        return TurnRun(self, conversation, message, payload, tuple(updates), self.params)
