"""Decision engines: what turns a batch of prompts for one adapter into answer texts.

`TransformersEngine` runs a Qwen2.5-VL checkpoint with PEFT adapters (any size; the tiny one
on CPU here). `EchoEngine` implements the same interface without a model: it answers in the
action grammar and names the adapter that served it, so routing and batching are testable.
The Serve deployment receives its engine class by injection.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict

from bubblescope.agent.errors import AdapterError
from bubblescope.agent.prompt import Prompt
from bubblescope.agent.spec import GenerationSpec


class Engine(ABC):
    @abstractmethod
    def load_adapter(self, key: str, path: str) -> None:
        """Make adapter `key` (from folder `path`) available; idempotent."""

    @abstractmethod
    def unload_adapter(self, key: str) -> None:
        """Free adapter `key`; unknown keys are ignored."""

    @abstractmethod
    def generate(self, key: str, prompts: list[Prompt], generation: GenerationSpec) -> list[str]:
        """One answer per prompt, with adapter `key` ('' = the base model)."""

    def loaded(self) -> list[str]:
        return []


class EchoEngine(Engine):
    """No model: answers `watch(<n>)` where n counts the prompt's images plus one, and tags the
    answer with the adapter and the size of the batch it was generated in."""

    def __init__(self, base_model: str) -> None:
        self.base_model = base_model
        self.adapters: OrderedDict[str, str] = OrderedDict()

    def load_adapter(self, key: str, path: str) -> None:
        self.adapters[key] = path

    def unload_adapter(self, key: str) -> None:
        self.adapters.pop(key, None)

    def generate(self, key: str, prompts: list[Prompt], generation: GenerationSpec) -> list[str]:
        return [f"adapter={key or 'base'} batch={len(prompts)}\n```python\n"
                f"watch({len(p.images) + 1})\n```" for p in prompts]

    def loaded(self) -> list[str]:
        return list(self.adapters)


class TransformersEngine(Engine):
    """The base model loaded once per replica; adapters attached and switched with PEFT."""

    def __init__(self, base_model: str, device: str = "cpu") -> None:
        from bubblescope.agent.vlm import load_model, load_processor

        self.processor = load_processor(base_model)
        self.processor.tokenizer.padding_side = "left"  # generation continues on the right
        self.model = load_model(base_model, device=device).eval()
        self.device = device
        self.peft = None
        self._token_kinds = None

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

    def unload_adapter(self, key: str) -> None:
        if self.peft is not None and key in self.peft.peft_config and len(self.peft.peft_config) > 1:
            self.peft.delete_adapter(key)

    def loaded(self) -> list[str]:
        return list(self.peft.peft_config) if self.peft is not None else []

    def _batch(self, prompts: list[Prompt]):
        texts = [self.processor.apply_chat_template(p.messages, add_generation_prompt=True,
                                                    tokenize=False) for p in prompts]
        images = [image for p in prompts for image in p.images] or None
        return self.processor(text=texts, images=images, padding=True,
                              return_tensors="pt").to(self.device)

    def generate(self, key: str, prompts: list[Prompt], generation: GenerationSpec) -> list[str]:
        import torch

        batch = self._batch(prompts)
        sampling = {"do_sample": True, "temperature": generation.temperature,
                    "top_p": generation.top_p} \
            if generation.temperature > 0 else {"do_sample": False}
        if generation.constrain_watch:
            sampling["logits_processor"] = self._watch_constraint(batch["input_ids"].shape[1])
        with torch.no_grad(), self._adapter(key) as model:
            out = model.generate(**batch, max_new_tokens=generation.max_new_tokens,
                                 pad_token_id=self.processor.tokenizer.pad_token_id, **sampling)
        new = out[:, batch["input_ids"].shape[1]:]
        return self.processor.batch_decode(new, skip_special_tokens=True)

    def _watch_constraint(self, prompt_width: int):
        from transformers import LogitsProcessorList

        from bubblescope.agent.watch_constraint import TokenKinds, WatchConstraint

        tokenizer = self.processor.tokenizer
        if self._token_kinds is None:
            self._token_kinds = TokenKinds.of(tokenizer)
        return LogitsProcessorList([WatchConstraint(tokenizer, self._token_kinds, prompt_width)])

    def _adapter(self, key: str):
        import contextlib

        if not key:
            return contextlib.nullcontext(self.model) if self.peft is None \
                else _without_adapters(self.peft)
        if self.peft is None or key not in self.peft.peft_config:
            raise AdapterError(f"persona {key!r}: adapter not loaded on this replica")
        self.peft.set_adapter(key)
        return contextlib.nullcontext(self.peft)


class _without_adapters:  # noqa: N801 - used as a context manager, reads like one
    def __init__(self, peft) -> None:
        self.peft = peft

    def __enter__(self):
        self._context = self.peft.disable_adapter()
        self._context.__enter__()
        return self.peft

    def __exit__(self, *exc) -> None:
        self._context.__exit__(*exc)
