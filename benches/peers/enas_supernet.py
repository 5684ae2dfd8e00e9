"""A straightforward PyTorch implementation of archsearch's ENAS supernet on the digits, to
compare the speed of the shared-weight phase (seconds per epoch) with `archsearch enas`.

The same space (spaces/enas-digits.yaml: 6 layers; 3x3/5x5 convolutions and separable
convolutions with 32 filters; 3x3 max/avg pooling, stride 1, valid), the same weight blocks
(one per operation, layer and source layer, cut to the source's width and concatenated), the
same ops (ReLU, conv with TensorFlow 'same' padding, batch norm with batch statistics), the
same per-operation head, SGD with Nesterov momentum 0.9, weight decay 1e-4, clipping at 5,
batch 32, 1258 training images (the digits' 70 % split). Architectures are drawn uniformly
with skip probability --skip, or, for a like-for-like comparison, replayed in order from an
`archsearch enas` run's rollouts.csv (--archs): the same architectures its controller drew,
so both sides do the same arithmetic.

--fast-layout runs pooling and depthwise convolutions wider than 3x3 on channels-last copies of
their inputs, as archsearch does (src/enas/ops.rs); without it the script is the plain version.

Run:  PYTHONPATH=<a folder with torch 2.11> python3 benches/peers/enas_supernet.py --threads 1
"""
import argparse
import gzip
import math
import random
import time

import torch
import torch.nn.functional as F

LAYERS = 6
OPS = [("conv", 3), ("conv", 5), ("sep", 3), ("sep", 5), ("max", 3), ("avg", 3)]
FILTERS = 32
CLASSES = 10


def load_digits(path):
    rows = [line.split(",") for line in gzip.open(path, "rt").read().strip().splitlines()]
    x = torch.tensor([[float(v) / 16.0 for v in r[:64]] for r in rows]).view(-1, 1, 8, 8)
    y = torch.tensor([int(r[64]) for r in rows])
    return x, y


def widest(in_channels):
    cmax = [in_channels]
    for l in range(1, LAYERS + 1):
        cin = sum(cmax[:l])
        cmax.append(max(FILTERS if kind in ("conv", "sep") else cin for kind, _ in OPS))
    return cmax


class Supernet:
    def __init__(self, in_channels):
        self.cmax = widest(in_channels)
        self.params = []
        self.blocks = []  # [layer][op] -> dict
        for l in range(1, LAYERS + 1):
            layer = []
            prev = self.cmax[l - 1]
            for kind, k in OPS:
                b = {"kernel": [], "pointwise": [], "bn": None}
                for c in self.cmax[:l]:
                    if kind == "conv":
                        b["kernel"].append(self.new([FILTERS, c, k, k], math.sqrt(6 / (k * k * prev))))
                    elif kind == "sep":
                        b["kernel"].append(self.new([c, 1, k, k], math.sqrt(6 / (k * k))))
                        b["pointwise"].append(self.new([FILTERS, c, 1, 1], math.sqrt(6 / prev)))
                if kind in ("conv", "sep"):
                    b["bn"] = (self.const([FILTERS], 1.0), self.const([FILTERS], 0.0))
                layer.append(b)
            self.blocks.append(layer)
        self.head = []
        for kind, _ in OPS:
            bound = 1 / math.sqrt(FILTERS if kind in ("conv", "sep") else self.cmax[LAYERS - 1])
            if kind in ("conv", "sep"):
                w = [self.new([CLASSES, FILTERS], bound)]
            else:
                w = [self.new([CLASSES, c], bound) for c in self.cmax[:LAYERS]]
            self.head.append((w, self.new([CLASSES], bound)))

    def new(self, shape, bound):
        t = (torch.rand(shape) * 2 - 1) * bound
        t.requires_grad_(True)
        self.params.append(t)
        return t

    def const(self, shape, value):
        t = torch.full(shape, value, requires_grad=True)
        self.params.append(t)
        return t


def same_conv(x, w, groups):
    k = w.shape[2]
    total = max(k - 1, 0)  # stride 1
    before, after = total // 2, total - total // 2
    if before == after:
        return F.conv2d(x, w, padding=before, groups=groups)
    return F.conv2d(F.pad(x, [before, after, before, after]), w, groups=groups)


FAST_LAYOUT = False  # --fast-layout: archsearch's per-operation layout choice


def fast(op, x, channels_last):
    """Runs op on x stored channels-last when asked (and FAST_LAYOUT), back in the default layout."""
    if not (FAST_LAYOUT and channels_last):
        return op(x)
    return op(x.contiguous(memory_format=torch.channels_last)).contiguous()


def concat(inputs):
    if len(inputs) == 1:
        return inputs[0]
    h = max(t.shape[2] for t in inputs)
    w = max(t.shape[3] for t in inputs)
    out = []
    for t in inputs:
        dh, dw = h - t.shape[2], w - t.shape[3]
        out.append(F.pad(t, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2]) if dh or dw else t)
    return torch.cat(out, 1)


def forward(net, arch, x):
    outs = [x]
    channels = [x.shape[1]]
    for i, row in enumerate(arch):
        l = i + 1
        inputs = [l - 1] + [k for k, f in enumerate(row[1:]) if f == 1 and k < l - 1]
        widths = [channels[j] for j in inputs]
        kind, k = OPS[row[0]]
        b = net.blocks[i][row[0]]
        h = concat([outs[j] for j in inputs])
        if kind == "conv":
            w = torch.cat([b["kernel"][j][:, :c] for j, c in zip(inputs, widths)], 1)
            y = F.batch_norm(same_conv(F.relu(h), w, 1), None, None, b["bn"][0], b["bn"][1], True)
            c_out = FILTERS
        elif kind == "sep":
            dw = torch.cat([b["kernel"][j][:c] for j, c in zip(inputs, widths)], 0)
            pw = torch.cat([b["pointwise"][j][:, :c] for j, c in zip(inputs, widths)], 1)
            y = fast(lambda t: same_conv(t, dw, h.shape[1]), F.relu(h), k > 3)
            y = F.conv2d(y, pw)
            y = F.batch_norm(y, None, None, b["bn"][0], b["bn"][1], True)
            c_out = FILTERS
        else:
            if h.shape[2] < k or h.shape[3] < k:
                y = h
            elif kind == "max":
                y = fast(lambda t: F.max_pool2d(t, k, 1), h, True)
            else:
                y = fast(lambda t: F.avg_pool2d(t, k, 1), h, True)
            c_out = h.shape[1]
        outs.append(y)
        channels.append(c_out)
    last_kind = OPS[arch[-1][0]][0]
    hw, hb = net.head[arch[-1][0]]
    if last_kind in ("conv", "sep"):
        weight = hw[0]
    else:
        last_inputs = [LAYERS - 1] + [k for k, f in enumerate(arch[-1][1:]) if f == 1 and k < LAYERS - 1]
        weight = torch.cat([hw[j][:, : channels[j]] for j in last_inputs], 1)
    return F.linear(outs[-1].mean((2, 3)), weight, hb)


def sample(rng, skip):
    return [[rng.randrange(len(OPS))] + [int(rng.random() < skip) for _ in range(i)] for i in range(LAYERS)]


def replay(path):
    """The architectures of an archsearch rollouts.csv, in order, cycled."""
    import ast
    import csv
    archs = [ast.literal_eval(r["architecture"]) for r in csv.DictReader(open(path))]
    while True:
        yield from archs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--data", default="data/digits.csv.gz")
    parser.add_argument("--skip", type=float, default=0.4, help="skip probability of uniform draws")
    parser.add_argument("--archs", help="replay the architectures of an archsearch rollouts.csv")
    parser.add_argument("--fast-layout", action="store_true",
                        help="pooling and depthwise convolutions wider than 3x3 channels-last, as archsearch runs them")
    args = parser.parse_args()
    global FAST_LAYOUT
    FAST_LAYOUT = args.fast_layout
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = random.Random(0)
    x, y = load_digits(args.data)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[perm][:1258], y[perm][:1258]
    net = Supernet(1)
    replayed = replay(args.archs) if args.archs else None
    opt = torch.optim.SGD(net.params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    steps = args.epochs * (len(y) // 32)
    step = 0
    for epoch in range(args.epochs):
        started, cpu_started = time.perf_counter(), time.thread_time()
        order = torch.randperm(len(y))
        total = 0.0
        for s in range(len(y) // 32):
            idx = order[s * 32:(s + 1) * 32]
            for g in opt.param_groups:
                g["lr"] = 0.0005 + 0.5 * (0.05 - 0.0005) * (1 + math.cos(math.pi * step / steps))
            arch = next(replayed) if replayed else sample(rng, args.skip)
            loss = F.cross_entropy(forward(net, arch, x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in net.params if p.grad is not None], 5.0)
            opt.step()
            total += loss.item()
            step += 1
        wall, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
        print(f"epoch {epoch + 1}: {wall:.3f} s, cpu {cpu:.3f} s, mean loss {total / (len(y) // 32):.4f}")


if __name__ == "__main__":
    main()
