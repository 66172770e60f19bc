#!/usr/bin/python3
"""PyTorch reference for tests/bench/bench_train.c: the same models, batch, threads and optimiser.

One training step is optimizer.zero_grad(), forward, cross_entropy, backward, optimizer.step()
(SGD momentum 0.9, Nesterov, weight decay 5e-4) on random normalised 1x28x28 inputs with random
labels over 10 classes. After warm-up a block of steps lasting at least --min-time seconds is
timed --reps times; the median gives images/second. Results are printed as "BENCH {json}"
lines like bench_train's. Run with Debian's /usr/bin/python3 (python3-torch); without torch
it prints "skipped: python3-torch not installed" and exits 0.

--masked 0.8,0.9,0.95,0.99 times PyTorch's masked training instead (what sparse-training
libraries on PyTorch do: dense compute, gradients masked before the step, weights masked after
it) and inference (eval mode, no_grad) per sparsity, on 3x32x32 inputs for resnet20 and
wrn-22-2 (1x28x28 for mlp and lenet5), as "masked_step" lines for bench_sparse's table.

--image CxHxW and --classes K change the input and the classifier (resnet50 at 3x224x224 with
1000 classes is ImageNet's: torchvision.models.resnet50 from Debian's python3-torchvision, or
the same architecture defined here when torchvision is missing); --warmup sets the untimed
steps. Each step line carries the process's peak RSS (ru_maxrss), so one model per process
gives its memory.

--profile additionally prints torch.autograd.profiler's per-operator table for one step of
each model (not used by run.sh; for comparing per-layer costs by hand).
"""
import argparse
import json
import statistics
import sys
import time


def emit(obj):
    print("BENCH " + json.dumps(obj, separators=(",", ":")), flush=True)


def omp_wait():
    """libgomp's wait setting this process runs under (read before main, from the environment)."""
    import os
    if os.environ.get("OMP_WAIT_POLICY"):
        return "OMP_WAIT_POLICY=" + os.environ["OMP_WAIT_POLICY"]
    if os.environ.get("GOMP_SPINCOUNT"):
        return "GOMP_SPINCOUNT=" + os.environ["GOMP_SPINCOUNT"]
    return "default"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", default="mlp,lenet5,resnet20")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--image", default="1x28x28", help="input shape CxHxW")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before the timed blocks")
    p.add_argument("--min-time", type=float, default=0.3,
                   help="seconds per timed block of steps")
    p.add_argument("--masked", default="",
                   help="comma-separated sparsities: time masked training and inference instead")
    p.add_argument("--profile", action="store_true",
                   help="print the autograd profiler's operator table for one step")
    return p.parse_args()


def resnet50(nn, in_ch, classes, size):
    """ResNet-50 v1.5 as src/models.c builds it: torchvision's for ImageNet-sized RGB inputs,
    else (torchvision missing, or cigl's CIFAR stem below 64x64) the same blocks defined here.
    Returns the model and where it came from."""
    if in_ch == 3 and size >= 64:
        try:
            from torchvision.models import resnet50 as tv_resnet50
            return tv_resnet50(num_classes=classes), "torchvision"
        except ImportError:
            pass

    class Bottleneck(nn.Module):
        def __init__(self, cin, width, stride):
            super().__init__()
            cout = 4 * width
            self.body = nn.Sequential(
                nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout))
            self.shortcut = nn.Identity()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                              nn.BatchNorm2d(cout))
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.body(x) + self.shortcut(x))

    if size < 64:
        layers = [nn.Conv2d(in_ch, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    else:
        layers = [nn.Conv2d(in_ch, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                  nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for s, blocks in enumerate((3, 4, 6, 3)):
        for b in range(blocks):
            layers.append(Bottleneck(cin, 64 << s, 2 if s > 0 and b == 0 else 1))
            cin = 4 * (64 << s)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers), "own"


def build(name, nn, in_ch=1, classes=10):
    """The architectures of src/models.c for in_ch x 28x28 / 32x32 inputs (the residual
    networks take any size) and `classes` classes (mlp and lenet5: 1x28x28 and 10 only)."""
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(),
                             nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10))
    if name == "lenet5":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    if name in ("resnet20", "resnet32", "resnet56"):
        blocks = {"resnet20": 3, "resnet32": 5, "resnet56": 9}[name]

        class Block(nn.Module):
            def __init__(self, cin, cout, stride):
                super().__init__()
                self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(cout)
                self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
                self.bn2 = nn.BatchNorm2d(cout)
                self.relu = nn.ReLU()
                self.shortcut = nn.Identity()
                if stride != 1 or cin != cout:  # option B: 1x1 conv + BN projection
                    self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False),
                                                  nn.BatchNorm2d(cout))

            def forward(self, x):
                y = self.relu(self.bn1(self.conv1(x)))
                y = self.bn2(self.conv2(y))
                return self.relu(y + self.shortcut(x))

        layers = [nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
        cin = 16
        for s, width in enumerate((16, 32, 64)):
            for b in range(blocks):
                layers.append(Block(cin, width, 2 if s > 0 and b == 0 else 1))
                cin = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes)]
        return nn.Sequential(*layers)
    if name == "wrn-22-2":
        class Wide(nn.Module):  # pre-activation block, 1x1 shortcut on the pre-activated input
            def __init__(self, cin, cout, stride):
                super().__init__()
                self.bn1, self.bn2 = nn.BatchNorm2d(cin), nn.BatchNorm2d(cout)
                self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
                self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
                self.relu = nn.ReLU()
                self.shortcut = None
                if stride != 1 or cin != cout:
                    self.shortcut = nn.Conv2d(cin, cout, 1, stride, 0, bias=False)

            def forward(self, x):
                a = self.relu(self.bn1(x))
                y = self.conv2(self.relu(self.bn2(self.conv1(a))))
                return y + (self.shortcut(a) if self.shortcut is not None else x)

        layers = [nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)]
        cin = 16
        for s, width in enumerate((32, 64, 128)):
            for b in range(3):
                layers.append(Wide(cin, width, 2 if s > 0 and b == 0 else 1))
                cin = width
        layers += [nn.BatchNorm2d(cin), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                   nn.Linear(cin, classes)]
        return nn.Sequential(*layers)
    raise SystemExit(f"torch_bench: unknown model '{name}'")


def timed(fn, min_time, reps):
    """Median seconds per call over reps blocks of at least min_time seconds."""
    import statistics
    for _ in range(2):
        fn()
    t0 = time.perf_counter()
    fn()
    est = time.perf_counter() - t0
    n = max(1, int(-(-min_time // max(est, 1e-6))))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n)
    return statistics.median(times)


def masked(args, torch, nn, F):
    """Masked training as PyTorch sparse-training code does it (dense compute)."""
    for name in args.models.split(","):
        cifar = name not in ("mlp", "lenet5")
        shape = (3, 32, 32) if cifar else (1, 28, 28)
        for sp in [float(v) for v in args.masked.split(",")]:
            torch.manual_seed(0)
            model = build(name, nn, shape[0])
            prunable = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
            masks = [(torch.rand_like(w) >= sp).float() for w in prunable]
            with torch.no_grad():
                for w, m in zip(prunable, masks):
                    w.mul_(m)
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                                  weight_decay=5e-4)
            x = torch.randn(args.batch, *shape)
            y = torch.randint(0, 10, (args.batch,))

            def step():
                model.train()
                opt.zero_grad()
                F.cross_entropy(model(x), y).backward()
                for w, m in zip(prunable, masks):
                    w.grad.mul_(m)
                opt.step()
                with torch.no_grad():
                    for w, m in zip(prunable, masks):
                        w.mul_(m)

            def infer():
                model.eval()
                with torch.no_grad():
                    model(x)

            tr = timed(step, args.min_time, args.reps)
            inf = timed(infer, args.min_time, args.reps)
            print(f"{name} masked {sp:.2f}: train step {1e3 * tr:.2f} ms, inference "
                  f"{1e3 * inf:.2f} ms", flush=True)
            emit({"kind": "masked_step", "impl": "torch", "model": name, "sparsity": sp,
                  "batch": args.batch, "threads": args.threads, "reps": args.reps,
                  "train_ms": round(1e3 * tr, 4), "infer_ms": round(1e3 * inf, 4),
                  "omp_wait": omp_wait()})
    return 0


def main():
    args = parse_args()
    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except ImportError:
        print("skipped: python3-torch not installed (run with /usr/bin/python3 on Debian; "
              "apt-get install python3-torch)")
        emit({"kind": "skipped", "impl": "torch", "reason": "python3-torch not installed"})
        return 0

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    emit({"kind": "env", "impl": "torch", "torch_version": torch.__version__,
          "threads": torch.get_num_threads(), "batch": args.batch, "reps": args.reps,
          "mkldnn": bool(torch.backends.mkldnn.is_available()),
          "cpu_capability": torch.backends.cpu.get_cpu_capability()
          if hasattr(torch.backends, "cpu") else "unknown"})
    print(f"torch bench: torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    if args.masked:
        return masked(args, torch, nn, F)

    shape = tuple(int(v) for v in args.image.split("x"))
    for name in args.models.split(","):
        source = "here"
        if name == "resnet50":
            model, source = resnet50(nn, shape[0], args.classes, min(shape[1:]))
        else:
            if name in ("mlp", "lenet5") and (shape != (1, 28, 28) or args.classes != 10):
                raise SystemExit(f"torch_bench: {name} is defined for 1x28x28 and 10 classes")
            model = build(name, nn, shape[0], args.classes)
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                              weight_decay=5e-4)
        x = torch.randn(args.batch, *shape)
        y = torch.randint(0, args.classes, (args.batch,))
        nparams = sum(p.numel() for p in model.parameters())

        def step():
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        est = 0.0  # the fastest warm-up step estimates the block length
        for w in range(args.warmup):
            t0 = time.perf_counter()
            step()
            one = time.perf_counter() - t0
            est = one if w == 0 or one < est else est
        steps = max(1, int(-(-args.min_time // max(est, 1e-6)))) if est > 0 else 1
        times = []
        loss = None
        for _ in range(args.reps):
            t0 = time.perf_counter()
            for _ in range(steps):
                loss = step()
            times.append((time.perf_counter() - t0) / steps)
        med, best = statistics.median(times), min(times)
        import resource  # ru_maxrss: KiB on Linux
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(f"{name}: {nparams} parameters ({source}), input {args.image}, batch {args.batch}, "
              f"{args.threads} threads\n"
              f"  step: median {1e3 * med:.2f} ms (best {1e3 * best:.2f}) over {args.reps} reps "
              f"of {steps} steps = {args.batch / med:.1f} img/s; peak RSS {rss:.0f} MiB", flush=True)
        emit({"kind": "step", "impl": "torch", "model": name, "batch": args.batch,
              "threads": args.threads, "reps": args.reps, "steps_per_rep": steps,
              "median_ms": round(1e3 * med, 4), "min_ms": round(1e3 * best, 4),
              "img_per_s": round(args.batch / med, 2), "loss": round(float(loss), 5),
              "image": args.image, "classes": args.classes, "model_source": source,
              "omp_wait": omp_wait(), "peak_rss_mib": round(rss, 1)})
        if args.profile:
            with torch.autograd.profiler.profile() as prof:
                for _ in range(3):
                    step()
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
