"""torch.compile: the quantizer's hot path compiles as one graph and matches eager.

Also the eager-only blocking of that hot path's nearest-code search.

The hot path ``_quantize_rows`` must compile with ``fullgraph=True`` (no graph break);
the EMA update and dead-code restart stay outside it. The tests use the ``aot_eager``
backend: it runs Dynamo's full capture and AOTAutograd's forward and backward graphs, the
parts that break on untraceable code, without the minute of C++ compilation Inductor
needs on a CPU. Value checks (`set_validate_args`) are skipped inside a compiled region,
so they cannot break the graph; the first test keeps them switched on to prove it.
"""

from __future__ import annotations

import copy

import torch

import genlatent.functional.quantize as fq
from genlatent._validation import validate_args
from genlatent.models import mnist_vqvae
from genlatent.nn.quantize import _quantize_rows


def test_quantize_rows_compiles_fullgraph_and_matches_eager() -> None:
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    rows = torch.randn(24, 4, generator=g)
    codebook = torch.randn(7, 4, generator=g)
    compiled = torch.compile(_quantize_rows, fullgraph=True, backend="aot_eager")
    results, grads = [], []
    for fn in (_quantize_rows, compiled):
        x = rows.clone().requires_grad_()
        e = codebook.clone().requires_grad_()
        with validate_args(True):
            # learnable codebook, chunked search: the loop over chunks must unroll
            out = fn(x, e, commitment_weight=0.25, ema=False, chunk_size=3)
        (out.loss + out.quantized.square().sum()).backward()
        results.append(out)
        grads.append((x.grad, e.grad))
    eager, comp = results
    torch.testing.assert_close(comp.indices, eager.indices, rtol=0, atol=0)
    for name in ("quantized", "loss", "counts"):
        torch.testing.assert_close(getattr(comp, name), getattr(eager, name))
    assert set(comp.terms) == set(eager.terms) == {"codebook", "commitment"}
    for name in eager.terms:
        torch.testing.assert_close(comp.terms[name], eager.terms[name])
    for got, want in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(got, want)
    # the indices really are the brute-force nearest codes
    brute = torch.cdist(rows, codebook).argmin(dim=1)
    torch.testing.assert_close(comp.indices, brute, rtol=0, atol=0)


def test_blocked_nearest_code_search_matches_one_block() -> None:
    # past 2**22 distances nearest_code searches the rows in blocks (eager only); the
    # blocks must give the indices of one whole-matrix search and of a brute-force argmin
    g = torch.Generator().manual_seed(2)
    rows = torch.randn(4200, 8, generator=g)
    codebook = torch.randn(1024, 8, generator=g)
    assert rows.shape[0] * codebook.shape[0] > fq._BLOCKING_FROM
    blocked = fq.nearest_code(rows, codebook)
    whole = fq._nearest_in_rows(rows, codebook, codebook.pow(2).sum(1), codebook.shape[0])
    torch.testing.assert_close(blocked, whole, rtol=0, atol=0)
    chunked = fq.nearest_code(rows, codebook, chunk_size=100)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=0)
    distances = torch.cdist(rows.double(), codebook.double())
    chosen = distances.gather(1, blocked.unsqueeze(1)).squeeze(1)
    # float32 search vs float64 distances: equal up to float32 rounding of |x|^2 terms
    torch.testing.assert_close(chosen, distances.min(dim=1).values, rtol=1e-5, atol=1e-5)


def test_compiled_vqvae_training_step_matches_eager() -> None:
    torch._dynamo.reset()
    torch.manual_seed(0)
    eager = mnist_vqvae(hidden_channels=8, codebook_size=16, ema=True)
    compiled_module = copy.deepcopy(eager)
    compiled = torch.compile(compiled_module, backend="aot_eager")
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    outputs = []
    for model in (eager, compiled):
        with validate_args(False):
            out = model(x)
        loss = (out.reconstruction - x).square().mean() + out.quantizer_loss
        loss.backward()
        outputs.append(out)
    torch.testing.assert_close(outputs[1].indices, outputs[0].indices, rtol=0, atol=0)
    torch.testing.assert_close(outputs[1].reconstruction, outputs[0].reconstruction)
    torch.testing.assert_close(outputs[1].quantizer_loss, outputs[0].quantizer_loss)
    for (name, p_eager), p_comp in zip(
        eager.named_parameters(), compiled_module.parameters(), strict=True
    ):
        assert p_eager.grad is not None, name
        torch.testing.assert_close(p_comp.grad, p_eager.grad, msg=name)
    # the EMA step ran once, outside the graph, in both
    for name, buffer in eager.quantizer.named_buffers():
        torch.testing.assert_close(
            dict(compiled_module.quantizer.named_buffers())[name], buffer, msg=name
        )
    assert not torch.equal(eager.quantizer.cluster_size, torch.ones(16))
