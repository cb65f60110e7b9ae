"""Decision engines: what turns a batch of prompts, each with its own adapter, into answers.

`TransformersEngine` runs a Qwen2.5-VL checkpoint with PEFT adapters (any size; the tiny one
on CPU here) and generates a batch that mixes adapters in one pass (PEFT's per-row
`adapter_names`). `EchoEngine` implements the same interface without a model: it answers in
the action grammar and names the adapter that served each answer, the prompt it answered and
the batch it was in, so routing and batching are testable. The Serve deployment receives its
engine class by injection.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections import OrderedDict, defaultdict
from collections.abc import Sequence

from bubblescope.agent.errors import AdapterError
from bubblescope.agent.prompt import Prompt
from bubblescope.agent.spec import GenerationSpec
from bubblescope.serve import row_lora


class Engine(ABC):
    @abstractmethod
    def load_adapter(self, key: str, path: str) -> None:
        """Make adapter `key` (from folder `path`) available; idempotent."""

    @abstractmethod
    def unload_adapter(self, key: str) -> None:
        """Free adapter `key`; unknown keys are ignored."""

    @abstractmethod
    def generate(self, keys: Sequence[str], prompts: Sequence[Prompt],
                 generation: GenerationSpec) -> list[str]:
        """One answer per prompt, prompt i answered by adapter `keys[i]` ('' = the base
        model); one batch may mix adapters."""

    def loaded(self) -> list[str]:
        return []


INCOMPLETE_CHARACTER = "\ufffd"


def check_keys(keys: Sequence[str], prompts: Sequence[Prompt]) -> None:
    if isinstance(keys, str):  # a str is a Sequence[str] too: one key, read letter by letter
        raise TypeError(f"adapter keys {keys!r}: give a list, one key per prompt")
    if len(keys) != len(prompts):
        raise ValueError(f"{len(keys)} adapter keys for {len(prompts)} prompts: give one per "
                         "prompt")


def prompt_tail(prompt: Prompt, chars: int = 48) -> str:
    """The last `chars` characters of a prompt's text, whitespace collapsed (what the echo
    engine quotes, so a test can tell which prompt an answer answers)."""
    text = " ".join(part.get("text") or "" for message in prompt.messages
                    for part in message["content"])
    return " ".join(text.replace("`", "").split())[-chars:]


class EchoEngine(Engine):
    """No model: answers `watch(<n>)` where n counts the prompt's images plus one, and tags the
    answer with its adapter, the size of the batch it was generated in, how many adapters that
    batch mixed, and the tail of the prompt it answers."""

    def __init__(self, base_model: str) -> None:
        self.base_model = base_model
        self.adapters: OrderedDict[str, str] = OrderedDict()

    def load_adapter(self, key: str, path: str) -> None:
        self.adapters[key] = path

    def unload_adapter(self, key: str) -> None:
        self.adapters.pop(key, None)

    def generate(self, keys: Sequence[str], prompts: Sequence[Prompt],
                 generation: GenerationSpec) -> list[str]:
        check_keys(keys, prompts)
        mixed = len(set(keys))
        return [f"adapter={key or 'base'} batch={len(prompts)} adapters={mixed} "
                f"re={prompt_tail(p)!r}\n```python\nwatch({len(p.images) + 1})\n```"
                for key, p in zip(keys, prompts, strict=True)]

    def loaded(self) -> list[str]:
        return list(self.adapters)


class TransformersEngine(Engine):
    """The base model loaded once per replica; adapters attached with PEFT.

    A batch that mixes adapters is generated in one pass: each row's LoRA is applied to that
    row alone, so adapters of different ranks and the base model share a batch; plain LoRA
    goes through `row_lora` (two batched matmuls per layer whatever the number of adapters),
    anything else through PEFT's `adapter_names` ('__base__' for the base model), which loops
    over the adapters in each layer. What neither can mix is generated per adapter instead: a
    batch with images while some loaded adapter adapts the vision tower (its layers see
    patches, not rows).
    """

    def __init__(self, base_model: str, device: str = "cpu") -> None:
        from bubblescope.agent.vlm import load_model, load_processor

        self.processor = load_processor(base_model)
        self.processor.tokenizer.padding_side = "left"  # generation continues on the right
        self.model = load_model(base_model, device=device).eval()
        self.device = device
        self.peft = None
        self._token_kinds = None
        self._vision_lora = False

    def load_adapter(self, key: str, path: str) -> None:
        from peft import PeftModel

        from bubblescope.agent.adapters import check_adapter

        check_adapter(path, key)
        try:
            if self.peft is None:
                self.peft = PeftModel.from_pretrained(self.model, path, adapter_name=key)
            elif key not in self.peft.peft_config:
                self.peft.load_adapter(path, adapter_name=key)
        except (OSError, ValueError, RuntimeError, KeyError) as error:
            raise AdapterError(f"persona {key!r}: cannot load adapter {path}: {error}") from error
        self.peft.eval()
        self._vision_lora = _adapts_vision(self.peft)

    def unload_adapter(self, key: str) -> None:
        if self.peft is not None and key in self.peft.peft_config and len(self.peft.peft_config) > 1:
            self.peft.delete_adapter(key)
            self._vision_lora = _adapts_vision(self.peft)

    def loaded(self) -> list[str]:
        return list(self.peft.peft_config) if self.peft is not None else []

    def _batch(self, prompts: Sequence[Prompt]):
        texts = [self.processor.apply_chat_template(p.messages, add_generation_prompt=True,
                                                    tokenize=False) for p in prompts]
        images = [image for p in prompts for image in p.images] or None
        return self.processor(text=texts, images=images, padding=True,
                              return_tensors="pt").to(self.device)

    def generate(self, keys: Sequence[str], prompts: Sequence[Prompt],
                 generation: GenerationSpec) -> list[str]:
        check_keys(keys, prompts)
        for key in set(keys):
            self._check_loaded(key)
        answers = [""] * len(prompts)
        for indices in self._passes(keys, prompts):
            texts = self._generate([keys[i] for i in indices], [prompts[i] for i in indices],
                                   generation)
            for index, text in zip(indices, texts, strict=True):
                answers[index] = text
        return answers

    def _passes(self, keys: Sequence[str], prompts: Sequence[Prompt]) -> list[list[int]]:
        """The rows generated together: all of them, unless PEFT cannot mix this batch."""
        if not (self._vision_lora and any(p.images for p in prompts)):
            return [list(range(len(keys)))]
        groups: dict[str, list[int]] = defaultdict(list)
        for index, key in enumerate(keys):
            groups[key].append(index)
        return list(groups.values())

    def _generate(self, keys: list[str], prompts: list[Prompt],
                  generation: GenerationSpec) -> list[str]:
        import torch

        batch = self._batch(prompts)
        sampling = {"do_sample": True, "temperature": generation.temperature,
                    "top_p": generation.top_p} \
            if generation.temperature > 0 else {"do_sample": False}
        if generation.constrain_watch:
            sampling["logits_processor"] = self._watch_constraint(batch["input_ids"].shape[1])
        with torch.no_grad(), self._adapters(keys) as (model, routing):
            out = model.generate(**batch, **routing, max_new_tokens=generation.max_new_tokens,
                                 pad_token_id=self.processor.tokenizer.pad_token_id, **sampling)
        new = out[:, batch["input_ids"].shape[1]:]
        # An answer cut at max_new_tokens may end inside a multi-byte character; vLLM's
        # detokenizer holds such bytes back, so both engines give the same text.
        return [answer.rstrip(INCOMPLETE_CHARACTER)
                for answer in self.processor.batch_decode(new, skip_special_tokens=True)]

    def _watch_constraint(self, prompt_width: int):
        from transformers import LogitsProcessorList

        from bubblescope.agent.watch_constraint import TokenKinds, WatchConstraint

        tokenizer = self.processor.tokenizer
        if self._token_kinds is None:
            self._token_kinds = TokenKinds.of(tokenizer)
        return LogitsProcessorList([WatchConstraint(tokenizer, self._token_kinds, prompt_width)])

    def _check_loaded(self, key: str) -> None:
        if key and (self.peft is None or key not in self.peft.peft_config):
            raise AdapterError(f"persona {key!r}: adapter not loaded on this replica")

    def _adapters(self, keys: list[str]):
        """The model to generate with and the routing arguments for `keys`: one adapter is
        set as PEFT's active one; several go row by row, through `row_lora` where it applies,
        else through PEFT's `adapter_names`."""
        unique = set(keys)
        if unique == {""}:
            return contextlib.nullcontext((self.model, {})) if self.peft is None \
                else _without_adapters(self.peft)
        if len(unique) == 1:
            self.peft.set_adapter(keys[0])
            return contextlib.nullcontext((self.peft, {}))
        if row_lora.applies(self.peft, keys):
            return _entered(row_lora.RowLora(self.peft, keys))
        return contextlib.nullcontext(
            (self.peft, {"adapter_names": [key or BASE_ROW for key in keys]}))


BASE_ROW = "__base__"  # PEFT's name for a row that no adapter touches


def _adapts_vision(peft) -> bool:
    """Whether any loaded adapter has LoRA layers in the vision tower."""
    from peft.tuners.lora import LoraLayer

    return any(isinstance(module, LoraLayer) and ".visual." in f".{name}."
               for name, module in peft.named_modules())


@contextlib.contextmanager
def _without_adapters(peft):
    with peft.disable_adapter():
        yield peft, {}


@contextlib.contextmanager
def _entered(context):
    """(the model `context` gives, no routing arguments)."""
    with context as model:
        yield model, {}
