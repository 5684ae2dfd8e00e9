"""A straightforward PyTorch implementation of the supernet and bilevel step that
`archsearch darts` runs (DARTS, Liu, Simonyan & Yang 2019, laid out as Kubeflow Katib's DARTS
trial), to time a search epoch side by side with archsearch: same digits, same split sizes,
same batch size, same network, same thread count. Not a reference for results, only for speed.

    python3 benches/peers/darts_peer.py --order 1 --epochs 3 --threads 1
"""

import argparse
import gzip
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRIMITIVES = [
    "separable_convolution_3x3",
    "dilated_convolution_3x3",
    "dilated_convolution_5x5",
    "avg_pooling_3x3",
    "max_pooling_3x3",
    "skip_connection",
    "none",
]


def relu_conv_bn(c_in, c_out, k, stride, pad, dil=1, groups=1):
    return [
        nn.ReLU(),
        nn.Conv2d(c_in, c_out, k, stride, pad, dilation=dil, groups=groups, bias=False),
    ]


class DilConv(nn.Sequential):
    def __init__(self, c, k, stride, pad, dil):
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c, c, k, stride, pad, dilation=dil, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=False),
        )


class Reduce(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.a = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.b = nn.Conv2d(c_in, c_out - c_out // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=False)

    def forward(self, x):
        x = F.relu(x)
        return self.bn(torch.cat([self.a(x), self.b(x[:, :, 1:, 1:])], 1))


class Zero(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x[:, :, :: self.stride, :: self.stride] * 0.0


def make_op(name, c, stride):
    if name == "separable_convolution_3x3":
        return nn.Sequential(DilConv(c, 3, stride, 1, 1), DilConv(c, 3, 1, 1, 1))
    if name == "separable_convolution_5x5":
        return nn.Sequential(DilConv(c, 5, stride, 2, 1), DilConv(c, 5, 1, 2, 1))
    if name == "dilated_convolution_3x3":
        return DilConv(c, 3, stride, 2, 2)
    if name == "dilated_convolution_5x5":
        return DilConv(c, 5, stride, 4, 2)
    if name == "avg_pooling_3x3":
        return nn.Sequential(nn.AvgPool2d(3, stride, 1, count_include_pad=False), nn.BatchNorm2d(c, affine=False))
    if name == "max_pooling_3x3":
        return nn.Sequential(nn.MaxPool2d(3, stride, 1), nn.BatchNorm2d(c, affine=False))
    if name == "skip_connection":
        return nn.Identity() if stride == 1 else Reduce(c, c)
    return Zero(stride)


class Mixed(nn.Module):
    def __init__(self, c, stride):
        super().__init__()
        self.ops = nn.ModuleList(make_op(p, c, stride) for p in PRIMITIVES)

    def forward(self, x, w):
        # `none` adds zero; archsearch skips it too.
        return sum(w[i] * op(x) for i, op in enumerate(self.ops) if PRIMITIVES[i] != "none")


class Cell(nn.Module):
    def __init__(self, nodes, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.reduction, self.nodes = reduction, nodes
        if reduction_prev:
            self.pre0 = Reduce(c_pp, c)
        else:
            self.pre0 = nn.Sequential(*relu_conv_bn(c_pp, c, 1, 1, 0), nn.BatchNorm2d(c, affine=False))
        self.pre1 = nn.Sequential(*relu_conv_bn(c_p, c, 1, 1, 0), nn.BatchNorm2d(c, affine=False))
        self.edges = nn.ModuleList(
            Mixed(c, 2 if reduction and j < 2 else 1) for i in range(nodes) for j in range(2 + i)
        )

    def forward(self, s0, s1, weights):
        states = [self.pre0(s0), self.pre1(s1)]
        e = 0
        for i in range(self.nodes):
            total = 0
            for j in range(2 + i):
                total = total + self.edges[e](states[j], weights[e])
                e += 1
            states.append(total)
        return torch.cat(states[2:], 1)


class Supernet(nn.Module):
    def __init__(self, c, layers, nodes, stem_mult, classes):
        super().__init__()
        cs = stem_mult * c
        self.stem = nn.Sequential(nn.Conv2d(1, cs, 3, padding=1, bias=False), nn.BatchNorm2d(cs))
        c_pp, c_p, cur = cs, cs, c
        self.cells = nn.ModuleList()
        red_prev = False
        for i in range(layers):
            red = (layers == 2 and i == 1) or (layers > 2 and i in (layers // 3, 2 * layers // 3))
            if red:
                cur *= 2
            self.cells.append(Cell(nodes, c_pp, c_p, cur, red, red_prev))
            red_prev = red
            c_pp, c_p = c_p, cur * nodes
        self.head = nn.Linear(c_p, classes)
        edges = sum(2 + i for i in range(nodes))
        self.alphas = [
            (1e-3 * torch.randn(edges, len(PRIMITIVES))).requires_grad_(),
            (1e-3 * torch.randn(edges, len(PRIMITIVES))).requires_grad_(),
        ]

    def forward(self, x):
        wn, wr = (F.softmax(a, -1) for a in self.alphas)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, wr if cell.reduction else wn)
        return self.head(s1.mean((2, 3)))


def digits(path):
    rows = [list(map(float, l.split(","))) for l in gzip.open(path, "rt").read().splitlines() if l]
    x = torch.tensor([r[:64] for r in rows]).view(-1, 1, 8, 8) / 16.0
    y = torch.tensor([int(r[64]) for r in rows])
    return x, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--order", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--init-channels", type=int, default=4)
    ap.add_argument("--num-layers", type=int, default=3)
    ap.add_argument("--num-nodes", type=int, default=4)
    ap.add_argument("--eval", action="store_true",
                    help="after each epoch, evaluate the supernet (eval mode) on the alpha half and a dev split, as archsearch does; timed apart")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    here = os.path.dirname(os.path.abspath(__file__))
    x, y = digits(os.path.join(here, "..", "..", "data", "digits.csv.gz"))
    perm = torch.randperm(len(y))
    n_train = int(len(y) * 0.7)  # archsearch's 70 % train split, then halved
    xt, yt = x[perm[:n_train]], y[perm[:n_train]]
    n_dev = int(len(y) * 0.1)  # archsearch's 10 % dev split
    xd, yd = x[perm[n_train:n_train + n_dev]], y[perm[n_train:n_train + n_dev]]
    half = n_train // 2
    (xw, yw), (xa, ya) = (xt[:half], yt[:half]), (xt[half:], yt[half:])
    net = Supernet(a.init_channels, a.num_layers, a.num_nodes, 3, 10)
    weights = list(net.parameters())
    w_opt = torch.optim.SGD(weights, 0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(net.alphas, 3e-3, betas=(0.5, 0.999), weight_decay=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(a.epochs):
        lr = 0.001 + 0.5 * (0.025 - 0.001) * (1 + torch.cos(torch.tensor(3.14159265 * epoch / 20)).item())
        for g in w_opt.param_groups:
            g["lr"] = lr
        start, cpu = time.time(), time.process_time()
        pw, pa = torch.randperm(half), torch.randperm(len(ya))
        steps = min(half // a.batch_size + (half % a.batch_size > 1), len(ya) // a.batch_size + (len(ya) % a.batch_size > 1))
        for s in range(steps):
            iw, ia = pw[s * a.batch_size:(s + 1) * a.batch_size], pa[s * a.batch_size:(s + 1) * a.batch_size]
            bx, by, vx, vy = xw[iw], yw[iw], xa[ia], ya[ia]
            if a.order == 1:
                grads = torch.autograd.grad(loss_fn(net(vx), vy), net.alphas)
            else:
                # Unrolled step (momentum and weight decay as the optimiser), then the
                # finite-difference Hessian-vector product.
                g = torch.autograd.grad(loss_fn(net(bx), by), weights)
                saved = [w.detach().clone() for w in weights]
                with torch.no_grad():
                    for w, gw in zip(weights, g):
                        m = w_opt.state[w].get("momentum_buffer", torch.zeros_like(w)) * 0.9
                        w.sub_(lr * (m + gw + 3e-4 * w))
                out = torch.autograd.grad(loss_fn(net(vx), vy), net.alphas + weights)
                da, dw = out[: len(net.alphas)], out[len(net.alphas):]
                eps = 0.01 / torch.cat([d.view(-1) for d in dw]).norm()
                with torch.no_grad():
                    for w, s0, d in zip(weights, saved, dw):
                        w.copy_(s0 + eps * d)
                gp = torch.autograd.grad(loss_fn(net(bx), by), net.alphas)
                with torch.no_grad():
                    for w, s0, d in zip(weights, saved, dw):
                        w.copy_(s0 - eps * d)
                gn = torch.autograd.grad(loss_fn(net(bx), by), net.alphas)
                with torch.no_grad():
                    for w, s0 in zip(weights, saved):
                        w.copy_(s0)
                grads = [d - lr * (p - q) / (2 * eps) for d, p, q in zip(da, gp, gn)]
            a_opt.zero_grad()
            for al, gr in zip(net.alphas, grads):
                al.grad = gr
            a_opt.step()
            w_opt.zero_grad()
            loss = loss_fn(net(bx), by)
            loss.backward()
            nn.utils.clip_grad_norm_(weights, 5.0)
            w_opt.step()
        line = (
            f"epoch {epoch + 1}: {time.time() - start:.2f} s wall, {time.process_time() - cpu:.2f} s CPU "
            f"({steps} steps, order {a.order}, {a.threads} thread(s))"
        )
        if a.eval:
            start, cpu = time.time(), time.process_time()
            net.eval()
            with torch.no_grad():
                for ex, ey in ((xa, ya), (xd, yd)):
                    for i in range(0, len(ey), 1000):
                        loss_fn(net(ex[i:i + 1000]), ey[i:i + 1000]).item()
            net.train()
            line += f"; evaluation {time.time() - start:.2f} s wall, {time.process_time() - cpu:.2f} s CPU"
        print(line, flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory {peak:.0f} MiB")


if __name__ == "__main__":
    main()
