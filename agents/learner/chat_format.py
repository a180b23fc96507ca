"""How a conversation becomes token ids under a model's own chat template, checked once by a round trip.

Token in, token out: the policy renders the opening chat once (``apply_chat_template`` with the generation
prompt) and afterwards only *appends* ids: the tokens the model generates, then for each observation the
ids that close the assistant turn, hold the observation as a user turn and open the next assistant turn.
:class:`ChatFormat` derives those observation ids from the template itself, by rendering a short
conversation with sentinel contents (no system message: Gemma-style templates reject one, and Mistral-style
templates move the system text into the *last* user turn, so a dummy system message would leak into
every observation). Nothing is ever re-tokenised, so ids, loss mask and log-probs stay aligned.

Whether appending reproduces the template is not assumed but checked (:meth:`ChatFormat.check_round_trip`,
run when a :class:`~agents.learner.policy.Policy` is built): a two-turn episode built by appending ids must
tokenise exactly as ``apply_chat_template`` renders the whole conversation. Templates that rewrite earlier
turns when later ones arrive (dropping past reasoning, moving the system message), or tokenizers that merge
tokens across the turn boundary, fail with a :class:`ChatTemplateError` that names the template.

Some templates put whitespace between the generation prompt and an assistant message's content (Mistral's
``[/INST]`` then ``" " + content``): that whitespace is :attr:`ChatFormat.assistant_lead`, text the model
itself generates at the start of a turn; the round trip prepends it to the assistant turns it appends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_QUESTION = "TOOLR1QUESTIONSENTINEL"
_ACTION = "TOOLR1ACTIONSENTINEL"
_OBSERVATION = "TOOLR1OBSERVATIONSENTINEL"

#: The conversation of the round trip: contents without leading or trailing whitespace (templates that
#: ``trim`` contents would otherwise differ for a reason unrelated to the token layout).
ROUND_TRIP = ("What is 17 * 23?", "Thought: multiply.\n```py\nresult = 17 * 23\nprint(result)\n```",
              "Execution logs:\n391", "FINAL ANSWER: 391")


class ChatTemplateError(ValueError):
    """The chat template cannot be used token in, token out (the message names the template)."""


def template_name(tokenizer: Any) -> str:
    """A short name for the tokenizer's chat template: the tokenizer's name plus a digest of the template."""
    template = getattr(tokenizer, "chat_template", None) or ""
    if isinstance(template, dict):  # several named templates: the default one is used
        template = template.get("default", next(iter(template.values()), ""))
    digest = hashlib.sha1(str(template).encode()).hexdigest()[:10]
    return f"the chat template of {getattr(tokenizer, 'name_or_path', '') or '?'!r} (sha1 {digest})"


def _render(tokenizer: Any, messages: Sequence[dict[str, str]], generation_prompt: bool, what: str) -> str:
    try:
        return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation_prompt)
    except Exception as exc:  # jinja2 raise_exception(...) and friends: report them as template errors
        raise ChatTemplateError(f"{template_name(tokenizer)} cannot render {what}: {exc}") from exc


@dataclass(frozen=True)
class ChatFormat:
    """The text a template puts around assistant turns and observations, derived from the template.

    Args:
        assistant_lead: whitespace between the generation prompt and an assistant message's content
            (usually ``""``); the model generates it.
        observation_prefix: text after an assistant message's content up to an observation's content
            (closes the assistant turn, opens the observation turn).
        observation_suffix: text after an observation's content up to the next assistant content (closes the
            observation turn, opens the next assistant turn: the generation prompt).
        observation_role: the chat role observations are sent as.
        name: the template's name, for error messages.
    """

    assistant_lead: str
    observation_prefix: str
    observation_suffix: str
    observation_role: str
    name: str

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, observation_role: str = "user") -> ChatFormat:
        """Derive the format from ``tokenizer.apply_chat_template`` (raises :class:`ChatTemplateError`)."""
        name = template_name(tokenizer)
        opening = [{"role": "user", "content": _QUESTION}]
        prompt = _render(tokenizer, opening, True, "a user turn with the generation prompt")
        chat = [*opening, {"role": "assistant", "content": _ACTION},
                {"role": observation_role, "content": _OBSERVATION}]
        full = _render(tokenizer, chat, True, f"an assistant turn followed by a {observation_role!r} turn")
        if not full.startswith(prompt):
            raise ChatTemplateError(f"{name} renders the opening of a conversation differently once an assistant "
                                    "turn follows it; ids cannot be appended turn by turn")
        rest = full[len(prompt):]
        lead, found, after = rest.partition(_ACTION)
        if not found or lead.strip():
            raise ChatTemplateError(f"{name} does not place an assistant message's content right after the "
                                    f"generation prompt (found {lead[:60]!r} before it)")
        if after.count(_OBSERVATION) != 1:
            raise ChatTemplateError(f"{name} does not render an observation sent as role {observation_role!r} "
                                    "exactly once after the assistant turn")
        prefix, suffix = after.split(_OBSERVATION)
        return cls(lead, prefix, suffix, observation_role, name)

    def observation_text(self, observation: str) -> str:
        """The text appended after an assistant turn's content to hold ``observation`` and reopen the assistant."""
        return self.observation_prefix + observation + self.observation_suffix

    def check_round_trip(self, tokenizer: Any, encode: Any, system_prompt: str | None = None) -> None:
        """Raise :class:`ChatTemplateError` unless appended turns tokenise as the whole conversation renders.

        Args:
            tokenizer: the tokenizer whose template this is.
            encode: ``text -> ids`` without special tokens added (the policy's own tokenisation).
            system_prompt: also check a conversation that opens with this system message.
        """
        question, action, observation, answer = ROUND_TRIP
        opening = ([{"role": "system", "content": system_prompt}] if system_prompt else [])
        opening.append({"role": "user", "content": question})
        what = "the opening chat" + (" with a system message" if system_prompt else "")
        prompt_ids = encode(_render(tokenizer, opening, True, what))
        observation_ids = encode(self.observation_text(observation))
        appended = prompt_ids + encode(self.assistant_lead + action) + observation_ids + encode(
            self.assistant_lead + answer)
        chat = [*opening, {"role": "assistant", "content": action}, {"role": self.observation_role,
                                                                      "content": observation},
                {"role": "assistant", "content": answer}]  # fmt: skip
        expected = encode(_render(tokenizer, chat, False, "a whole two-turn conversation"))
        # The template closes the last turn (an end-of-turn token, a newline): the model generates that.
        tail = expected[len(appended):]
        closing = encode(self.observation_prefix)[:1]
        if tail[: len(closing)] == closing:
            tail = tail[len(closing):]
        if expected[: len(appended)] == appended and not tokenizer.decode(tail).strip():
            return
        at = next((i for i, (a, b) in enumerate(zip(appended, expected, strict=False)) if a != b),
                  min(len(appended), len(expected)))
        ours, theirs = tokenizer.decode(appended[at:at + 12]), tokenizer.decode(expected[at:at + 12])
        raise ChatTemplateError(
            f"{self.name[:1].upper()}{self.name[1:]}: appending turn by turn does not reproduce apply_chat_template "
            f"of the whole conversation{' with a system message' if system_prompt else ''}; first difference at "
            f"token {at}: appended {ours!r} vs rendered {theirs!r}. Use another observation role, or a template that "
            "does not rewrite earlier turns."
        )

