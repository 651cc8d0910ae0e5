"""Code for every device, checked on a CPU: each test stands in for the accelerator the
defect needs (a fake GPU RNG, a model reported on CUDA, a recorded draw device)."""

import torch

import genlatent._rng as rng_module
from genlatent import VAE, MLPDecoder, MLPEncoder, ResidualVQ, fit
from genlatent.train import sampling

QUIET = {"log": lambda line: None, "show_progress": False, "device": "cpu"}


class _FakeCuda:
    """Stands in for ``torch.cuda`` with one GPU whose RNG state is a small tensor."""

    def __init__(self) -> None:
        self.state = torch.tensor([1, 2, 3], dtype=torch.uint8)
        self.restored: list[list[torch.Tensor]] = []

    def get_rng_state_all(self) -> list[torch.Tensor]:
        return [self.state.clone()]

    def set_rng_state_all(self, states: list[torch.Tensor]) -> None:
        self.restored.append(states)

    def device_count(self) -> int:
        return 1


def _vae() -> VAE:
    torch.manual_seed(0)
    return VAE(MLPEncoder(16, 8, 2), MLPDecoder(2, 8, 16, out_shape=(1, 4, 4)))


def test_resume_restores_every_devices_rng(tmp_path, monkeypatch):
    cuda = _FakeCuda()
    monkeypatch.setattr(rng_module, "_cuda", lambda: cuda)
    images = torch.randint(0, 256, (32, 1, 4, 4), dtype=torch.uint8)
    fit(_vae(), images, run_dir=tmp_path, epochs=1, batch_size=16, lr=1e-3, **QUIET)
    saved = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert torch.equal(saved["device_rng"]["cuda"][0], torch.tensor([1, 2, 3], dtype=torch.uint8))
    cuda.state = torch.tensor([9, 9, 9], dtype=torch.uint8)  # the GPU drew on meanwhile
    fit(_vae(), images, run_dir=tmp_path, epochs=2, batch_size=16, lr=1e-3, resume=True, **QUIET)
    assert len(cuda.restored) == 1
    assert torch.equal(cuda.restored[0][0], torch.tensor([1, 2, 3], dtype=torch.uint8))


def test_rng_states_round_trip_the_cpu_state():
    saved = rng_module.rng_states()
    first = torch.rand(3)
    rng_module.restore_rng_states(saved)
    assert torch.equal(torch.rand(3), first)


def test_prior_samples_draw_with_a_generator_on_the_models_device(monkeypatch):
    """A CPU generator for draws on CUDA is what PyTorch refuses: the generator must be
    made on the model's device (reported here as cuda:0)."""
    made = []

    def recorder(device, seed):
        made.append(torch.device(device))
        return torch.Generator().manual_seed(seed)

    class Source(torch.nn.Module):
        def generate(self, prior, num, *, labels, generator, **options):
            return torch.zeros(num, 1, 2, 2)

    class Loaded:
        model = Source()

    monkeypatch.setattr(sampling, "module_device", lambda module: torch.device("cuda", 0))
    monkeypatch.setattr(sampling, "seeded_generator", recorder)
    prior = torch.nn.Linear(1, 1)
    monkeypatch.setattr(prior, "to", lambda device: prior)
    sampling.prior_samples(Loaded(), prior, 4, seed=3)
    assert made == [torch.device("cuda", 0)]


def test_residual_vq_dropout_draws_on_the_rows_device(monkeypatch):
    """One rule for every quantizer: its generator lives on the rows' device (as
    `VectorQuantizer`'s), so the stage count is drawn there, never on the CPU by default."""
    quantizer = ResidualVQ(3, 4, 2, quantize_dropout=True).train()
    quantizer.generator = torch.Generator().manual_seed(0)
    draws = []
    randint = torch.randint

    def recording(*args, **kwargs):
        if kwargs.get("generator") is quantizer.generator:
            draws.append(kwargs.get("device"))
        return randint(*args, **kwargs)

    monkeypatch.setattr(torch, "randint", recording)
    rows = torch.randn(2, 2, 3, 3, requires_grad=True)
    quantizer(rows)
    assert draws
    assert all(d is not None and torch.device(d) == rows.device for d in draws)
