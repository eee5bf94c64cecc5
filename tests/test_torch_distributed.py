"""An emitted module trained under DistributedDataParallel: two CPU processes, gloo.

Each rank builds LeNet from the spec with its own seed (DDP must broadcast rank 0's
weights), takes two SGD steps on its own random batch, and saves its data, its weights
after wrapping and its final weights. The ranks must end equal, changed, and equal to one
process taking the same two steps on both batches at once (DDP averages gradients; LeNet
has no batch statistics, so the two are the same computation up to float rounding).

The workers are this file run as a script, one subprocess per rank, so a hang is killed by
``subprocess`` timeouts and by the process group's own timeout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "lenet.net"
WORLD = 2
STEPS = 2
BATCH = 8
LR = 0.1
TIMEOUT_S = 50


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_model(seed: int) -> torch.nn.Module:
    import netc

    torch.manual_seed(seed)
    return netc.compile_file(str(SPEC)).to_torch("LeNet")


def batches(rank: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1000 + rank)  # different data on every rank
    return [(torch.randn(BATCH, 1, 28, 28, generator=g), torch.randint(0, 10, (BATCH,), generator=g))
            for _ in range(STEPS)]


def train(model: torch.nn.Module, data) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    for x, y in data:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def worker(rank: int, out: Path) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=timedelta(seconds=30))
    try:
        model = DDP(build_model(seed=rank))  # broadcasts rank 0's parameters and buffers
        start = {k: v.clone() for k, v in model.module.state_dict().items()}
        data = batches(rank)
        train(model, data)
        torch.save({"start": start, "end": model.module.state_dict(), "data": data}, out / f"rank{rank}.pt")
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_ddp_two_ranks_end_equal(tmp_path):
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
           "WORLD_SIZE": str(WORLD), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, __file__, str(r), str(tmp_path)], env={**env, "RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for r in range(WORLD)]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=TIMEOUT_S)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for r, p in enumerate(procs):
        assert p.returncode == 0, f"rank {r} exited {p.returncode}:\n{logs[r] if r < len(logs) else ''}"

    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    fresh = build_model(seed=1).state_dict()
    for k, v in ranks[0]["start"].items():
        torch.testing.assert_close(ranks[1]["start"][k], v, rtol=0, atol=0)  # DDP's broadcast
        assert not torch.equal(fresh[k], v), f"rank 1 kept its own {k}"
    for k, v in ranks[0]["end"].items():
        torch.testing.assert_close(ranks[1]["end"][k], v, rtol=0, atol=0, msg=f"ranks differ in {k}")
        assert not torch.equal(v, ranks[0]["start"][k]), f"{k} did not change"

    # one process, both ranks' batches at once: the same steps as DDP's averaged gradients
    single = build_model(seed=0)
    single.load_state_dict(ranks[0]["start"])
    both = [(torch.cat([r["data"][s][0] for r in ranks]), torch.cat([r["data"][s][1] for r in ranks]))
            for s in range(STEPS)]
    train(single, both)
    for k, v in single.state_dict().items():
        torch.testing.assert_close(ranks[0]["end"][k], v, atol=1e-5, rtol=1e-5, msg=k)


if __name__ == "__main__":
    worker(int(sys.argv[1]), Path(sys.argv[2]))
