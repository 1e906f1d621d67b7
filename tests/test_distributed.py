"""torch.distributed on CPU, two processes with the gloo backend: DDP (every rank steps the same
replica: identical parameters and statistics) and FSDP2's fully_shard (parameters and states are
DTensors; the kernels step each rank's local shard, bit for bit like a plain optimizer on that
shard), and the reduction of statistics across ranks."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import bitkernels as bk
from bitkernels.stats import Layout

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is missing")
WORLD = 2


def spawn(fn, *args) -> None:
    """Runs fn(rank, *args) in WORLD processes joined by gloo; a failure in any is raised."""
    with tempfile.TemporaryDirectory() as directory:
        mp.start_processes(_entry, args=(f"file://{directory}/rendezvous", fn, args),
                           nprocs=WORLD, start_method="spawn")


def _entry(rank: int, init_method: str, fn, args) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=WORLD)
    try:
        fn(rank, *args)
        dist.barrier()  # no rank tears gloo down while another still talks to it
    finally:
        dist.destroy_process_group()
    # torch 2.13's gloo sometimes aborts at interpreter exit ("terminate called without an
    # active exception", after the test passed): a rank whose work succeeded leaves at once.
    os._exit(0)


def _model(dtype=torch.float32) -> nn.Module:
    torch.manual_seed(0)  # the same initial weights on every rank
    return nn.Sequential(nn.Linear(16, 300), nn.Tanh(), nn.Linear(300, 3)).to(dtype)


def _batch(rank: int, step: int, dtype) -> torch.Tensor:
    return torch.randn(8, 16, generator=torch.Generator().manual_seed(100 * step + rank)).to(dtype)


def _same_on_every_rank(t: torch.Tensor) -> bool:
    gathered = [torch.empty_like(t) for _ in range(WORLD)]
    dist.all_gather(gathered, t.contiguous())
    return all(torch.equal(gathered[0], g) for g in gathered)


def _ddp(rank: int, dtype_name: str) -> None:
    from torch.nn.parallel import DistributedDataParallel

    dtype = getattr(torch, dtype_name)
    model = _model(dtype)
    ddp = DistributedDataParallel(model)
    opt = bk.optim.AdamW(model.named_parameters(), lr=1e-2, backend="cpu")
    for step in range(4):
        loss = ddp(_batch(rank, step, dtype)).float().pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for p in model.parameters():  # the bits, widened: gloo moves no int16
        bits = p.detach().view(torch.int16).int() if p.element_size() == 2 else p.detach().view(
            torch.int32)
        assert _same_on_every_rank(bits)
    local = {name: s.clone() for name, s in opt.bit_stats().items()}
    for name, s in local.items():
        assert _same_on_every_rank(s.counters), name
    reduced = opt.bit_stats(reduce=True)
    for name, s in local.items():
        r = reduced[name]
        want = s.counters * WORLD
        want[Layout.STEPS] = s.counters[Layout.STEPS]
        assert torch.equal(r.counters, want), name
        torch.testing.assert_close(r.sums, s.sums * WORLD, rtol=1e-12, atol=0)
        assert torch.equal(opt.bit_stats()[name].counters, s.counters), "live views changed"
        assert s.clone().all_reduce_().equal(r), name
    assert float(reduced["0.weight"].lost_frac()) == float(local["0.weight"].lost_frac())


def _fsdp2(rank: int) -> None:
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor

    model = _model()
    fully_shard(model)
    opt = bk.optim.AdamW(model.named_parameters(), lr=1e-2, backend="cpu")
    # A plain optimizer on plain copies of this rank's shards, fed the same shard gradients.
    shards = [nn.Parameter(p.to_local().detach().clone()) for p in model.parameters()]
    mirror = bk.optim.AdamW(shards, lr=1e-2, backend="cpu")
    for step in range(4):
        loss = model(_batch(rank, step, torch.float32)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        for shard, p in zip(shards, model.parameters()):
            assert isinstance(p, DTensor) and isinstance(p.grad, DTensor)
            shard.grad = p.grad.to_local().clone()
        opt.step()
        mirror.step()
        for shard, p in zip(shards, model.parameters()):
            assert torch.equal(p.to_local().detach().view(torch.int32),
                               shard.detach().view(torch.int32))
    for p in model.parameters():
        assert all(isinstance(opt.state[p][k], DTensor) for k in ("exp_avg", "exp_avg_sq"))
    for (name, s), m in zip(opt.bit_stats().items(), mirror.bit_stats().values()):
        assert s.equal(m), name  # each rank counts its shard
    reduced = opt.bit_stats(reduce=True)
    for name, p in model.named_parameters():
        r = reduced[name]
        assert int(r.counters[Layout.STEPS]) == 4, name
        assert int(r.counters[Layout.NUMEL]) == 4 * p.numel(), name  # shards add up to p


@pytest.mark.slow
@pytest.mark.parametrize("dtype_name", ["float32", "bfloat16"])
def test_ddp_ranks_keep_identical_parameters_and_statistics(dtype_name):
    spawn(_ddp, dtype_name)


@pytest.mark.slow
def test_fsdp2_steps_each_local_shard_like_a_plain_optimizer():
    spawn(_fsdp2)
