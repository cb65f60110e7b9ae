"""A batch of rows, each with its own LoRA adapter, through every adapted layer in one step.

PEFT's own mixed batches (`adapter_names`) loop over the batch's adapters in every adapted
layer: a sub-batch gathered, two matmuls and a scatter per adapter, so a batch of 16 personas
costs 16 times the LoRA work of one. Here each layer's adapters are laid out once per batch,
row by row (A as rows x rank x in, B as rows x out x rank, ranks zero-padded to the batch's
largest, which adds exact zeros), and a forward hook adds every row's delta with two batched
matmuls, PEFT's adapters being disabled meanwhile: the same sum, whatever the number of
adapters. Rows of the base model get zero weights.

Only plain LoRA on linear layers qualifies (no DoRA or other variants, no LoRA bias), and only
while the rows' copies of the weights stay within a memory budget (large models with many
adapters of high rank would need gigabytes): otherwise `applies` says no and the engine uses
PEFT's `adapter_names`.
"""

from __future__ import annotations

from collections.abc import Sequence

ROW_WEIGHTS_BUDGET_BYTES = 256 * 2**20


def _lora_layers(peft):
    from peft.tuners.lora import LoraLayer

    return [module for module in peft.modules() if isinstance(module, LoraLayer)]


def _plain(layer, key: str) -> bool:
    from peft.tuners.lora import Linear

    return (isinstance(layer, Linear) and key not in layer.lora_variant
            and not layer.lora_bias.get(key, False))


def applies(peft, keys: Sequence[str]) -> bool:
    """Whether the rows of `keys` can go through `RowLora` on `peft`."""
    adapters = {key for key in keys if key}
    weights = 0
    for layer in _lora_layers(peft):
        present = [key for key in adapters if key in layer.lora_A]
        if not all(_plain(layer, key) for key in present):
            return False
        if present:
            rank = max(layer.lora_A[key].weight.shape[0] for key in present)
            weights += len(keys) * rank * (layer.in_features + layer.out_features)
    return weights * 4 <= ROW_WEIGHTS_BUDGET_BYTES


class _RowDelta:
    """One layer's forward hook: adds row i's LoRA delta to row i of the layer's output."""

    def __init__(self, layer, keys: Sequence[str]) -> None:
        import torch

        present = sorted({key for key in keys if key in layer.lora_A})
        rank = max(layer.lora_A[key].weight.shape[0] for key in present)
        weight = layer.lora_A[present[0]].weight
        rows = len(keys)
        down = torch.zeros(rows, layer.in_features, rank, dtype=weight.dtype, device=weight.device)
        up = torch.zeros(rows, rank, layer.out_features, dtype=weight.dtype, device=weight.device)
        scale = torch.zeros(rows, 1, 1, dtype=weight.dtype, device=weight.device)
        for row, key in enumerate(keys):
            if key in present:
                r = layer.lora_A[key].weight.shape[0]
                down[row, :, :r] = layer.lora_A[key].weight.T
                up[row, :r, :] = layer.lora_B[key].weight.T
                scale[row] = layer.scaling[key]
        self.down, self.up, self.scale = down, up, scale

    def __call__(self, module, args, output):
        import torch

        x = args[0]
        rows = self.down.shape[0]
        if x.shape[0] != rows:
            raise RuntimeError(f"a LoRA layer saw {x.shape[0]} rows in a batch of {rows}")
        flat = x.reshape(rows, -1, x.shape[-1]).to(self.down.dtype)
        delta = torch.bmm(torch.bmm(flat, self.down), self.up) * self.scale
        return output + delta.reshape(output.shape).to(output.dtype)


class RowLora:
    """While entered: `peft` with its adapters disabled and each row's own adapter added by
    hooks (keys[i] for row i; '' for the base model). Enter it around one generate call."""

    def __init__(self, peft, keys: Sequence[str]) -> None:
        self.peft, self.keys = peft, list(keys)
        self._handles: list = []

    def __enter__(self):
        self._disabled = self.peft.disable_adapter()
        self._disabled.__enter__()
        for layer in _lora_layers(self.peft):
            if any(key in layer.lora_A for key in self.keys if key):
                delta = _RowDelta(layer, self.keys)
                self._handles.append(layer.register_forward_hook(delta))
        return self.peft

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._disabled.__exit__(*exc)
