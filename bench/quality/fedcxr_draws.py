"""fedcxr's random draws in Python, for bench/quality's paired mode (`--draws fedcxr`): the torchvision side then
visits the same images in the same order, augments each with the same angle and intensities, and samples the
same RPN anchors and RoIs as `cxr train` with the same seed, so the two runs differ only by floating point.

A port of packages/base/src/rng.ts (mulberry32 with FNV-1a-derived stream seeds), of the epoch order of
packages/core/src/train/sampler.ts (no repeat factors, no negative cap, shuffled) and of the stream keys of
packages/core/src/train/engine.ts. tests/quality-draws.test.ts checks it against the TypeScript.
"""
import numpy as np

MASK = 0xFFFFFFFF
GOLDEN = 0x6D2B79F5


def imul(a, b):
    return (a * b) & MASK


def derive_seed(seed, *keys):
    """deriveSeed: FNV-1a over '/key' for each key, then a murmur3-style avalanche."""
    h = (0x811C9DC5 ^ (seed & MASK)) & MASK
    for key in keys:
        for ch in "/" + str(key):
            h = imul(h ^ ord(ch), 0x01000193)
    h ^= h >> 16
    h = imul(h, 0x85EBCA6B)
    h ^= h >> 13
    h = imul(h, 0xC2B2AE35)
    h ^= h >> 16
    return h


def _mix(states):
    """mulberry32's output for each (already advanced) state, as uint64 arrays holding 32-bit values."""
    t = states
    t = ((t ^ (t >> np.uint64(15))) * (t | np.uint64(1))) & np.uint64(MASK)
    t = t ^ ((t + (((t ^ (t >> np.uint64(7))) * (t | np.uint64(61))) & np.uint64(MASK))) & np.uint64(MASK))
    return (t ^ (t >> np.uint64(14))) & np.uint64(MASK)


class FedcxrRng:
    """core's Rng: the state advances by a constant per draw, so a run of draws is computed at once."""

    def __init__(self, state):
        self.state = state & MASK

    def draws(self, n):
        """The next n values in [0, 1), as `next()` n times."""
        steps = np.arange(1, n + 1, dtype=np.uint64)
        states = (np.uint64(self.state) + steps * np.uint64(GOLDEN)) & np.uint64(MASK)
        self.state = (self.state + n * GOLDEN) & MASK
        return _mix(states).astype(np.float64) / 4294967296.0

    def next(self):
        return float(self.draws(1)[0])

    def uniform(self, low, high):
        return low + (high - low) * self.next()

    def shuffle(self, items):
        """Fisher–Yates from the end, j = floor(u·(i+1)), as Rng.shuffle."""
        n = len(items)
        if n < 2:
            return items
        u = self.draws(n - 1)
        js = np.floor(u * np.arange(n, 1, -1, dtype=np.float64)).astype(np.int64).tolist()
        for i, j in zip(range(n - 1, 0, -1), js):
            items[i], items[j] = items[j], items[i]
        return items

    def permutation(self, n):
        return self.shuffle(list(range(n)))


def rng_for(seed, *keys):
    return FedcxrRng(derive_seed(seed, *keys))


def epoch_order(has_boxes, seed, epoch):
    """EpochSampler.epochIndices without repeat factors or a negative cap, shuffled: one draw per image (the
    stochastic rounding of a repeat factor of 1), positives then negatives, then the shuffle."""
    rng = rng_for(seed, "sampler", epoch)
    rng.draws(len(has_boxes))
    positives = [i for i, b in enumerate(has_boxes) if b]
    negatives = [i for i, b in enumerate(has_boxes) if not b]
    return rng.shuffle(positives + negatives)


def augment_rng(seed, epoch, position):
    """The stream one image's augmentation draws from: position = step · batch + index in the batch."""
    return rng_for(seed, "augment", epoch, position)


def detector_seed(seed, epoch, step):
    """The state the detector's samplers draw their permutations from in this step."""
    return derive_seed(seed, "detector", epoch, step)

