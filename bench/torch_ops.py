#!/usr/bin/python3
"""The peer side of bench/bench_ops.c: DESIGN.md's layers a-e in PyTorch.

Batch 2, 'SAME' padding, no bias; forward + backward with gradients for the
input AND the weights (fresh gradients each repetition, as after
zero_grad(set_to_none=True)); median over repetitions after a warm-up, in ms.

Modes (DESIGN.md):
  shipped  NCHW tensors, the process environment as it is;
  tuned    channels_last tensors, and the process runs with
           GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824,
           OPENBLAS_NUM_THREADS=<threads> and OPENBLAS_CORETYPE unset. These
           must hold from process start, so the script re-executes itself with
           them when they are not set.

Padding: stride 1 uses symmetric padding (k-1)*d/2, which is exactly 'SAME';
layer e (3x3 stride 2 from 80x80) uses padding 1, which gives the same 40x40
output and the same work as TF 'SAME' (which pads 0 top/left, 1 bottom/right).

Also the tiny-op chain of the overhead bar: 1,000 ops (1x1 conv 8->8 with
weights requiring grad, batch norm in training mode, ReLU, repeated) at
1x8x10x10, forward + backward; per-op time = step / 1000.

Run with /usr/bin/python3 (Debian's python3-torch; the first python3 on PATH
may have no torch). Usage:
  /usr/bin/python3 bench/torch_ops.py --mode shipped|tuned [--threads 2] [--reps 50]
      [--warmup 5] [--layers abcde] [--chain-reps 40] [--no-overhead] [--json]
"""
import argparse
import json
import os
import statistics
import sys
import time

TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"

# id, description, (n, h, w), convs: (k, stride, dilation, c_in, c_out, depthwise)
LAYERS = [
    ("a", "conv 3x3 40->40 @80x80", (2, 80, 80), [(3, 1, 1, 40, 40, False)]),
    ("b", "dw 3x3 + pw 1x1, 40 ch @80x80", (2, 80, 80), [(3, 1, 1, 40, 40, True), (1, 1, 1, 40, 40, False)]),
    ("c", "dw 5x5 dilation 2, 80 ch @40x40", (2, 40, 40), [(5, 1, 2, 80, 80, True)]),
    ("d", "conv 1x1 160->160 @20x20", (2, 20, 20), [(1, 1, 1, 160, 160, False)]),
    ("e", "conv 3x3 s2 40->80 from 80x80", (2, 80, 80), [(3, 2, 1, 40, 80, False)]),
]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["shipped", "tuned"], required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--layers", default="abcde")
    ap.add_argument("--chain-reps", type=int, default=40)
    ap.add_argument("--no-overhead", action="store_true")
    ap.add_argument("--json", action="store_true", help="one JSON object per line instead of the table")
    return ap.parse_args()


def ensure_tuned_env(args):
    """The tuned mode's environment must hold from process start: re-exec."""
    want = {"GLIBC_TUNABLES": TUNABLES, "OPENBLAS_NUM_THREADS": str(args.threads)}
    env = os.environ
    if all(env.get(k) == v for k, v in want.items()) and "OPENBLAS_CORETYPE" not in env:
        return
    if env.get("SEGNAS_TORCH_REEXEC"):
        sys.exit("torch_ops.py: could not set the tuned environment")
    new_env = dict(env, SEGNAS_TORCH_REEXEC="1", **want)
    new_env.pop("OPENBLAS_CORETYPE", None)
    os.execve(sys.executable, [sys.executable] + sys.argv, new_env)


def import_torch():
    try:
        import torch  # noqa: F401
        import torch.nn.functional  # noqa: F401
    except ImportError:
        sys.exit("torch_ops.py: PyTorch is missing for %s; scripts/install-deps.sh --bench installs "
                 "python3-torch (run with /usr/bin/python3)" % sys.executable)
    return torch


def layer_flops(n, h, w, convs):
    """forward + backward data + backward weights: 3 x 2 x MACs."""
    flops = 0.0
    for k, stride, _dil, ci, co, dw in convs:
        h, w = -(-h // stride), -(-w // stride)
        flops += 3 * 2.0 * n * h * w * co * (1 if dw else ci) * k * k
    return flops


def bench_layer(torch, args, lid, what, nhw, convs):
    F = torch.nn.functional
    fmt = torch.channels_last if args.mode == "tuned" else torch.contiguous_format
    gen = torch.Generator().manual_seed(42)
    n, h, w = nhw
    x = torch.randn(n, convs[0][3], h, w, generator=gen).contiguous(memory_format=fmt).requires_grad_()
    ws, geo = [], []
    oh, ow = h, w
    for k, stride, dil, ci, co, dw in convs:
        cig = 1 if dw else ci
        wt = torch.randn(co, cig, k, k, generator=gen) * (2.0 / (k * k * cig)) ** 0.5
        ws.append(wt.contiguous(memory_format=fmt).requires_grad_())
        geo.append((stride, (k - 1) * dil // 2, dil, ci if dw else 1))
        oh, ow = -(-oh // stride), -(-ow // stride)
    dy = (0.1 * torch.randn(n, convs[-1][4], oh, ow, generator=gen)).contiguous(memory_format=fmt)

    def step():
        x.grad = None
        for wt in ws:
            wt.grad = None
        t0 = time.perf_counter()
        y = x
        for wt, (stride, pad, dil, groups) in zip(ws, geo):
            y = F.conv2d(y, wt, None, stride, pad, dil, groups)
        y.backward(dy)
        return (time.perf_counter() - t0) * 1e3

    for _ in range(args.warmup):
        step()
    ms = statistics.median(step() for _ in range(args.reps))
    return ms, layer_flops(n, h, w, convs) / (ms * 1e-3) * 1e-9


def bench_chain(torch, args, n_ops=1000, ch=8):
    F = torch.nn.functional
    fmt = torch.channels_last if args.mode == "tuned" else torch.contiguous_format
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(1, ch, 10, 10, generator=gen).contiguous(memory_format=fmt)
    dy = (0.1 * torch.randn(1, ch, 10, 10, generator=gen)).contiguous(memory_format=fmt)
    params, ops = [], []
    for i in range(n_ops):
        if i % 3 == 0:
            wt = (0.5 * torch.randn(ch, ch, 1, 1, generator=gen)).contiguous(memory_format=fmt).requires_grad_()
            params.append(wt)
            ops.append(("conv", wt))
        elif i % 3 == 1:
            g, b = torch.ones(ch, requires_grad=True), torch.zeros(ch, requires_grad=True)
            params += [g, b]
            ops.append(("bn", (g, b, torch.zeros(ch), torch.ones(ch))))
        else:
            ops.append(("relu", None))

    def step():
        for p in params:
            p.grad = None
        t0 = time.perf_counter()
        h = x
        for kind, p in ops:
            if kind == "conv":
                h = F.conv2d(h, p)
            elif kind == "bn":
                g, b, rm, rv = p
                h = F.batch_norm(h, rm, rv, g, b, training=True, momentum=0.1, eps=1e-5)
            else:
                h = F.relu(h)
        h.backward(dy)
        return (time.perf_counter() - t0) * 1e3

    for _ in range(3):
        step()
    ms = statistics.median(step() for _ in range(args.chain_reps))
    return ms, ms * 1e3 / n_ops


def main():
    args = parse_args()
    if args.mode == "tuned":
        ensure_tuned_env(args)
    torch = import_torch()
    torch.set_num_threads(args.threads)  # it defaults to 1 on this machine (DESIGN.md)
    impl = "torch_" + args.mode
    if not args.json:
        print("PyTorch %s, %s (%s), %d threads, median of %d (%d warm-up)" %
              (torch.__version__, args.mode, "channels_last" if args.mode == "tuned" else "NCHW",
               torch.get_num_threads(), args.reps, args.warmup))
    total = 0.0
    for lid, what, nhw, convs in LAYERS:
        if lid not in args.layers:
            continue
        ms, gflops = bench_layer(torch, args, lid, what, nhw, convs)
        total += ms
        if args.json:
            print(json.dumps({"bench": "layer", "impl": impl, "layer": lid, "what": what, "threads": args.threads,
                              "reps": args.reps, "ms": round(ms, 4), "gflops": round(gflops, 1)}), flush=True)
        else:
            print("%s  %-32s %8.3f ms %7.1f GFLOP/s" % (lid, what, ms, gflops), flush=True)
    if not args.json:
        print("sum %38.3f ms" % total)
    if not args.no_overhead:
        ms, per_op = bench_chain(torch, args)
        if args.json:
            print(json.dumps({"bench": "overhead", "impl": impl, "ops": 1000, "threads": args.threads,
                              "step_ms": round(ms, 4), "per_op_us": round(per_op, 3)}), flush=True)
        else:
            print("tiny-op chain: 1000 ops, step %.3f ms = %.2f us per op" % (ms, per_op))


if __name__ == "__main__":
    main()
