#!/usr/bin/python3
"""PyTorch peer of `segnas train` on a discrete network (issue 5): is a
training result a property of the recipe or of segnas's engine?

  train_torch.py WEIGHTS_DIR DATA_DIR [--steps N] [--lr 0.05] [--weight-decay 1e-4] ...

WEIGHTS_DIR comes from `segnas bench infer --save WEIGHTS_DIR --size 64 --batch 4
--classes 8 -F 4 [--arch A]`: the network's configuration and its weights at
initialisation (segnas's own initial weights, so both start from the same
point). DATA_DIR is a folder data set, e.g. `segnas data synth --out DATA_DIR`.
The network is bench/discrete_torch.py's construction, trained with
`segnas train`'s recipe: SGD momentum 0.9, poly schedule (power 0.9), weight
decay on kernels only, batch norm in training mode (momentum 0.1, eps 1e-5),
dropout 0.1 after the head, random batches of whole images. It prints the
loss and the global gradient norm every 50 steps and the validation mIoU
and pixel accuracy over --val images (batch norm on running statistics).

Measured (README, "Training the paper's network"): Auto-DeepLab at F = 4 on
the 64x64 synthetic set, 100 validation images. Weight decay 1e-4, 400 steps:
the trivial baseline here (6.65% mIoU) as in segnas (6.36%). Weight decay
5e-3, 3000 steps: 37.9% here, 53.9% in segnas (one seed each).

  segnas bench infer -F 4 --size 64 --batch 4 --classes 8 --reps 1 --seed 0 --save W
  segnas data synth --out D --n 2000 --val-n 200
  /usr/bin/python3 bench/train_torch.py W D --steps 3000 --weight-decay 5e-3
"""
import argparse
import os
import random
import sys


def read_split(data, split, n, torch, np, Image):
    with open(os.path.join(data, split + ".txt")) as f:
        ids = f.read().split()[:n]
    img = np.stack([np.asarray(Image.open(os.path.join(data, "images", i + ".png")).convert("RGB")) for i in ids])
    lab = np.stack([np.asarray(Image.open(os.path.join(data, "masks", i + ".png"))) for i in ids])
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # segnas's ImageNet normalisation
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = torch.tensor(img).permute(0, 3, 1, 2).float()
    return (x / 255 - mean) / std, torch.tensor(lab).long()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights")
    ap.add_argument("data")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--train", type=int, default=2000, help="training images read")
    ap.add_argument("--val", type=int, default=100, help="validation images")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    try:
        import numpy as np
        import torch
        import torch.nn.functional as F
        from PIL import Image
    except ImportError as e:
        sys.exit("train_torch.py: %s; run with /usr/bin/python3 (Debian python3-torch, python3-pil)" % e)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import discrete_torch as dt
    dt.torch, dt.F = torch, F
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    cfg, P, _, _ = dt.load(args.weights)
    for k in P:
        P[k].requires_grad_("running" not in k)

    class TrainNet(dt.Net):
        training = True

        def bn(self, name, x):
            Q = self.P
            return F.batch_norm(x, Q[name + ".running_mean"], Q[name + ".running_var"], Q[name + ".gamma"],
                                Q[name + ".beta"], self.training, 0.1, 1e-5)

        def aspp(self, x):
            return F.dropout(super().aspp(x), 0.1, self.training)

    net = TrainNet(cfg, P)
    classes = P["decoder.logits.bias"].numel()
    xt, yt = read_split(args.data, "train", args.train, torch, np, Image)
    xv, yv = read_split(args.data, "val", args.val, torch, np, Image)
    decay = [v for v in P.values() if v.requires_grad and v.dim() >= 2]
    rest = [v for v in P.values() if v.requires_grad and v.dim() < 2]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": args.weight_decay},
                           {"params": rest, "weight_decay": 0.0}], lr=args.lr, momentum=0.9)
    rng = random.Random(args.seed)
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = args.lr * (1 - step / args.steps) ** 0.9
        idx = [rng.randrange(len(xt)) for _ in range(args.batch)]
        loss = F.cross_entropy(net.forward(xt[idx]), yt[idx], ignore_index=255)
        opt.zero_grad()
        loss.backward()
        if step % 50 == 0 or step == args.steps - 1:
            norm = torch.sqrt(sum((v.grad ** 2).sum() for v in decay + rest if v.grad is not None))
            print("step %d loss %.4f gradient norm %.4g" % (step, loss.item(), norm.item()), flush=True)
        opt.step()

    net.training = False
    conf = torch.zeros(classes, classes, dtype=torch.long)
    with torch.no_grad():
        for i in range(0, len(xv), 10):
            pred = net.forward(xv[i:i + 10]).argmax(1)
            t = yv[i:i + 10]
            m = t != 255
            conf += torch.bincount(t[m] * classes + pred[m], minlength=classes * classes).view(classes, classes)
    union = (conf.sum(0) + conf.sum(1) - conf.diag()).double()
    present = union > 0
    iou = conf.diag().double()[present] / union[present]
    print("val mIoU %.2f%% pixel accuracy %.2f%% (%d images)" %
          (100 * iou.mean().item(), 100 * conf.diag().sum().item() / conf.sum().item(), len(xv)))


if __name__ == "__main__":
    main()
