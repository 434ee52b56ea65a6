"""Small idioms real PyTorch programs lean on, each with a value both libraries must agree
on exactly: import paths (torch.nn.modules.*, torch.utils.data.*), device selection
without a GPU, writes through views, keepdims=, nelement/new_*/legacy constructors/type,
unique/histogram/histc/log10, `.data` as a Tensor (`p.data = ...`, `p.data += ...`), and
how tensors print and format (`f"{loss:.4f}"`, str, repr).
"""

import numpy as np
import torch
import torch.nn as nn
import torch.utils.data.dataloader
from _common import report
from torch.nn.modules.loss import _Loss
from torch.nn.modules.module import Module
from torch.utils.data.dataset import Dataset
from torch.utils.data.sampler import RandomSampler, SequentialSampler


class SquaredError(_Loss):
    def forward(self, input, target):
        return ((input - target) ** 2).mean()


class Squares(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return torch.tensor([float(i * i)])


def views_written_through():
    t = torch.zeros(4, 4)
    t[1:3] = 1.0
    t.view(16)[0] = 5.0
    t.T[0, 3] = 7.0
    column = t[:, 1]
    column.add_(2.0)
    t.narrow(0, 3, 1).fill_(3.0)
    t.unsqueeze(0)[0, 2, 2] = 9.0
    flat = t.reshape(-1)
    flat[-1] = -1.0
    return t.tolist()


def keepdims_and_counts():
    x = torch.arange(12.0).view(3, 4)
    return {
        "sum": x.sum(1, keepdims=True).tolist(),
        "mean": x.mean(dim=0, keepdims=True).tolist(),
        "amax": x.amax(1, keepdims=True).tolist(),
        "max_values": x.max(1, keepdim=True).values.tolist(),
        "nelement": x.nelement(),
        "numel": x.numel(),
        "new_zeros": x.new_zeros(2, 3).tolist(),
        "new_full": x.new_full((2,), 7).tolist(),
        "new_tensor": x.new_tensor([1, 2]).tolist(),
        "long": torch.LongTensor([1, 2, 3]).tolist(),
        "float_dtype": str(torch.FloatTensor(2, 3).zero_().dtype).split(".")[-1],
        "type": str(x.type(torch.int64).dtype).split(".")[-1],
        "type_name": x.type().split(".")[-1],
        "unique": [u.tolist() for u in torch.tensor([3, 1, 3, 2, 1, 3]).unique(
            return_counts=True)],
        "histc": torch.histc(x, bins=4, min=0, max=12).tolist(),
        "histogram": [h.tolist() for h in torch.histogram(x.flatten(), bins=3)],
        "log10": torch.tensor([1.0, 100.0, 0.001]).log10().tolist(),
        "size": list(x.size()),
        "size1": x.size(1),
        "shape_index": x.shape[0],
        "dim": x.dim(),
    }


def data_is_a_tensor():
    p = nn.Parameter(torch.ones(3))
    p.data = torch.full((3,), 2.0)
    p.data += torch.tensor([1.0, 2.0, 3.0])
    alias = p.data
    alias.mul_(2.0)
    loss = (p * p).sum()
    loss.backward()
    p.data.add_(p.grad, alpha=-0.1)
    return {"p": p.tolist(), "grad": p.grad.tolist(), "requires_grad": p.requires_grad,
            "alias_requires_grad": alias.requires_grad, "is_leaf": p.is_leaf}


def printing():
    loss = (torch.tensor([1.5, 2.25], requires_grad=True) ** 2).mean()
    small = torch.tensor([[0.5, -1.25], [3.0, 1e-4]])
    ints = torch.tensor([1, 20, 300])
    return {
        "fmt4": f"{loss:.4f}",
        "fmt_item": f"{loss.item():.4f}",
        "fmt_e": format(torch.tensor(1234.5), ".2e"),
        "percent": "%.3f" % torch.tensor(0.12345),  # noqa: UP031 (programs do this)
        "str_scalar": str(torch.tensor(2.5)),
        "repr_small": repr(small),
        "repr_ints": repr(ints),
        "str_bool": str(torch.tensor([True, False])),
        "repr_long_scalar": repr(torch.tensor(7)),
        "item": torch.tensor(3.0).item(),
        "tolist_scalar": torch.tensor(4).tolist(),
        "float_of": float(torch.tensor([2.5])),
        "int_of": int(torch.tensor(9)),
    }


def main():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    mps = torch.backends.mps.is_available()
    torch.manual_seed(0)
    torch.cuda.manual_seed_all(0)
    with torch.amp.autocast(device_type="cpu", enabled=False):
        y = torch.ones(2) * 2
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    assert isinstance(model, Module)
    crit = SquaredError()
    x = torch.from_numpy(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))
    out = model(x)
    loss = crit(out, torch.zeros_like(out))
    loader = torch.utils.data.dataloader.DataLoader(Squares(), batch_size=2,
                                                    sampler=SequentialSampler(Squares()))
    batches = [b.view(-1).tolist() for b in loader]
    lazy = RandomSampler(Squares(), replacement=True, num_samples=int(1e10))
    first = [i for _, i in zip(range(4), lazy)]
    report(
        deterministic={
            "device": str(device), "mps": mps, "autocast": y.tolist(),
            "views": views_written_through(), "misc": keepdims_and_counts(),
            "data": data_is_a_tensor(), "printing": printing(),
            "state_keys": list(model.state_dict().keys()),
            "param_shapes": [list(p.shape) for p in model.parameters()],
            "loss_is_scalar": loss.dim() == 0, "batches": batches,
            "grad_enabled": torch.is_grad_enabled(),
        },
        checks={"lazy_sampler": len(lazy) == int(1e10) and all(0 <= i < 5 for i in first)},
    )


if __name__ == "__main__":
    main()
