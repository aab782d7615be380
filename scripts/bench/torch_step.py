"""PyTorch reference of one Safe MetaNet step, for scripts/bench/main.mjs.

Reads a JSON request on stdin (rows, steps, warmup, threads, inference_repeats) and prints JSON with the
median and p90 step time in ms per row and the frozen-inference throughput. The step mirrors the loop of
packages/core/src/safe-metanet.ts. Each attempt snapshots the adapter variables in scope and measures the
entropy proxy without gradients. It then takes one Adam step (a fresh optimizer per attempt) on entropy +
lambda * sum of squares and measures again. It accepts when the metric fell by more than the threshold.
Otherwise it copies the snapshot back and adds the next layer (last to first) to the scope.
"""

import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def channels_last(weight):
    return weight.contiguous(memory_format=torch.channels_last)


def make_frozen_layers(model, generator):
    """Returns the frozen weights of the MLP 784-256-256-10 or the CNN 28x28x1, 32 channels, 3 layers."""
    def uniform(shape, fan_in):
        limit = math.sqrt(6.0 / fan_in)
        return (torch.rand(shape, generator=generator) * 2 - 1) * limit

    if model == 'mlp':
        sizes = [(784, 256), (256, 256), (256, 10)]
        return [
            {'kind': 'dense', 'weight': uniform((n_in, n_out), n_in), 'bias': torch.zeros(n_out), 'out': n_out, 'in': n_in}
            for n_in, n_out in sizes
        ]
    # Two 3x3 'same' convolutions with ReLU and 2x2 max pooling (28 -> 14 -> 7), then a dense layer.
    return [
        {'kind': 'conv', 'weight': channels_last(uniform((32, 1, 3, 3), 9)), 'bias': torch.zeros(32), 'out': 32, 'in': 1},
        {'kind': 'conv', 'weight': channels_last(uniform((32, 32, 3, 3), 288)), 'bias': torch.zeros(32), 'out': 32, 'in': 32},
        {'kind': 'dense', 'weight': uniform((7 * 7 * 32, 10), 7 * 7 * 32), 'bias': torch.zeros(10), 'out': 10, 'in': 7 * 7 * 32},
    ]


class Lora:
    """x A B * alpha / rank added to the frozen output; B starts at zero. Conv layers use a k x k then a 1 x 1 conv."""

    def __init__(self, layer, rank, alpha, generator):
        self.layer = layer
        self.scale = alpha / rank
        if layer['kind'] == 'dense':
            limit = math.sqrt(6.0 / layer['in'])
            self.a = ((torch.rand((layer['in'], rank), generator=generator) * 2 - 1) * limit).requires_grad_()
            self.b = torch.zeros((rank, layer['out'])).requires_grad_()
        else:
            limit = math.sqrt(6.0 / (layer['in'] * 9))
            self.a = ((torch.rand((rank, layer['in'], 3, 3), generator=generator) * 2 - 1) * limit).requires_grad_()
            self.b = torch.zeros((layer['out'], rank, 1, 1)).requires_grad_()
        self.variables = [self.a, self.b]

    def apply(self, x, frozen):
        if self.layer['kind'] == 'dense':
            return frozen + (x @ self.a @ self.b) * self.scale
        down = F.conv2d(x, self.a, padding=1)
        return frozen + F.conv2d(down, self.b) * self.scale


class Bottleneck:
    """frozen + relu(frozen down + down_bias) up + up_bias, per output channel; up starts at zero."""

    def __init__(self, layer, bottleneck, generator):
        self.layer = layer
        channels = layer['out']
        limit = math.sqrt(6.0 / channels)
        self.down = ((torch.rand((channels, bottleneck), generator=generator) * 2 - 1) * limit).requires_grad_()
        self.down_bias = torch.zeros(bottleneck).requires_grad_()
        self.up = torch.zeros((bottleneck, channels)).requires_grad_()
        self.up_bias = torch.zeros(channels).requires_grad_()
        self.variables = [self.down, self.down_bias, self.up, self.up_bias]

    def apply(self, _x, frozen):
        if self.layer['kind'] == 'dense':
            return frozen + F.relu(frozen @ self.down + self.down_bias) @ self.up + self.up_bias
        rows = frozen.permute(0, 2, 3, 1)
        delta = F.relu(rows @ self.down + self.down_bias) @ self.up + self.up_bias
        return frozen + delta.permute(0, 3, 1, 2)


def forward(layers, adapters, x):
    last = len(layers) - 1
    for index, layer in enumerate(layers):
        if layer['kind'] == 'conv':
            frozen = F.conv2d(x, layer['weight'], layer['bias'], padding=1)
        else:
            if x.dim() > 2:
                x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
            frozen = x @ layer['weight'] + layer['bias']
        adapter = adapters.get(index)
        out = frozen if adapter is None else adapter.apply(x, frozen)
        if index < last:
            out = F.relu(out)
            if layer['kind'] == 'conv':
                out = F.max_pool2d(out, 2)
        x = out
    return x


def entropy(logits):
    log_probabilities = F.log_softmax(logits, dim=1)
    return -(log_probabilities.exp() * log_probabilities).sum(1).mean()


class Runner:
    def __init__(self, row, generator):
        self.row = row
        self.generator = generator
        self.layers = make_frozen_layers(row['model'], generator)
        self.adapters = {}
        self.scope = []
        self.schedule = list(range(len(self.layers) - 1, -1, -1))
        self.expand = row['scope'] == 'full'
        self.reset_each_step = row['scope'] == 'full'
        self.step_index = 0
        self.add_to_scope(self.schedule[0])

    def add_to_scope(self, index):
        if index not in self.adapters:
            layer = self.layers[index]
            if self.row['adapter'] == 'lora':
                self.adapters[index] = Lora(layer, self.row['rank'], self.row['alpha'], self.generator)
            else:
                self.adapters[index] = Bottleneck(layer, self.row['bottleneck'], self.generator)
        self.scope.append(index)

    def measure(self, x):
        with torch.no_grad():
            return entropy(forward(self.layers, self.adapters, x)).item()

    def attempt(self, x):
        variables = [v for index in self.scope for v in self.adapters[index].variables]
        snapshot = [v.detach().clone() for v in variables]
        before = self.measure(x)
        if not math.isfinite(before):
            return False, True
        optimizer = torch.optim.Adam(variables, lr=self.row['lr'])
        optimizer.zero_grad()
        loss = entropy(forward(self.layers, self.adapters, x))
        loss = loss + self.row['lambda'] * sum((v * v).sum() for v in variables)
        loss.backward()
        optimizer.step()
        finite_loss = math.isfinite(loss.item())
        after = self.measure(x) if finite_loss else float('nan')
        accepted = finite_loss and math.isfinite(after) and after < before - self.row['threshold']
        if not accepted:
            with torch.no_grad():
                for variable, saved in zip(variables, snapshot):
                    variable.copy_(saved)
        return accepted, not (finite_loss and math.isfinite(after))

    def step(self, x):
        if self.reset_each_step and self.step_index > 0:
            self.adapters = {}
            self.scope = []
            self.add_to_scope(self.schedule[0])
        self.step_index += 1
        attempts = 0
        while True:
            accepted, non_finite = self.attempt(x)
            attempts += 1
            if accepted or non_finite or not self.expand:
                break
            remaining = [index for index in self.schedule if index not in self.scope]
            if not remaining:
                break
            self.add_to_scope(remaining[0])
        return accepted, attempts


def input_shape(model, batch):
    return (batch, 784) if model == 'mlp' else (batch, 1, 28, 28)


def make_batch(model, batch, generator):
    # Channels-last images take the oneDNN convolution, which is about 2.5x faster than NCHW in Debian's
    # torch 1.13 on 2 cores, so that the reference is the faster of the two layouts.
    x = torch.randn(input_shape(model, batch), generator=generator)
    return x if model == 'mlp' else x.contiguous(memory_format=torch.channels_last)


def percentile(values, q):
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]


def time_row(row, steps, warmup, max_seconds):
    generator = torch.Generator().manual_seed(0)
    runner = Runner(row, generator)
    batches = [make_batch(row['model'], row['batch'], generator) for _ in range(8)]
    times, attempts, accepted = [], 0, 0
    started = time.perf_counter()
    index = 0
    while index < warmup + steps:
        begin = time.perf_counter()
        ok, count = runner.step(batches[index % len(batches)])
        elapsed = (time.perf_counter() - begin) * 1000
        if index >= warmup:
            times.append(elapsed)
            attempts += count
            accepted += 1 if ok else 0
            if max_seconds > 0 and sum(times) > max_seconds * 1000:
                break
        elif max_seconds > 0 and index >= 2 and time.perf_counter() - started > max_seconds / 4:
            # The warm-up ends early on slow rows, after at least 3 steps or a quarter of the time budget.
            warmup = index + 1
        index += 1
    return {
        'median_ms': statistics.median(times),
        'p90_ms': percentile(times, 0.9),
        'steps': len(times),
        'attempts_per_step': attempts / len(times),
        'accept_rate': accepted / len(times),
    }


def time_inference(row, repeats):
    generator = torch.Generator().manual_seed(0)
    layers = make_frozen_layers(row['model'], generator)
    x = make_batch(row['model'], row['batch'], generator)
    with torch.no_grad():
        for _ in range(5):
            forward(layers, {}, x).numpy()
        begin = time.perf_counter()
        for _ in range(repeats):
            forward(layers, {}, x).numpy()
        seconds = time.perf_counter() - begin
    return {'images_per_second': row['batch'] * repeats / seconds}


def main():
    request = json.load(sys.stdin)
    torch.set_num_threads(request['threads'])
    result = {'torch_version': torch.__version__, 'threads': torch.get_num_threads(), 'rows': {}, 'inference': {}}
    for row in request['rows']:
        result['rows'][row['name']] = time_row(row, request['steps'], request['warmup'], request.get('max_seconds', 0))
        print(f"torch {row['name']}: median {result['rows'][row['name']]['median_ms']:.2f} ms", file=sys.stderr)
    for row in request['inference']:
        result['inference'][row['name']] = time_inference(row, request['inference_repeats'])
    json.dump(result, sys.stdout)


if __name__ == '__main__':
    main()
