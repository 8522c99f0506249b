"""Tracker helpers: device-resident frame selection, in-place optimiser reset (kept CUDA-graph steps)."""

import torch

from vhap.track.tracker import frames_to_float


def test_frames_to_float_matches_indexing():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (7, 3, 5, 4, 3), dtype=torch.uint8, generator=g)  # (T,C,H,W,3)
    mattes = torch.randint(0, 256, (7, 3, 5, 4), dtype=torch.uint8, generator=g)  # (T,C,H,W)
    idx = torch.tensor([4, 1, 1, 6])  # repeated and unsorted, as a shuffled global batch may be
    for frames in (images, mattes):
        got = frames_to_float(frames, idx)
        want = frames[idx].flatten(0, 1).float() / 255.0
        assert got.dtype == torch.float32 and got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=0, atol=1e-7)
    # one frame: view c of the result is camera c of that frame
    one = frames_to_float(images, torch.tensor([2]))
    torch.testing.assert_close(one[1, 3, 2], images[2, 1, 3, 2].float() / 255.0, rtol=0, atol=1e-7)


def test_reset_adam_state_equals_a_fresh_optimizer():
    from vhap.track.tracker import reset_adam_state

    def grads(p, k):
        return torch.sin(p * (k + 1)) + p**2  # any deterministic gradient field

    start = torch.linspace(-1, 1, 12)
    used = torch.nn.Parameter(start.clone())
    opt = torch.optim.Adam([used], lr=0.05)
    for k in range(5):  # build up moments and the step counter
        used.grad = grads(used.detach(), k)
        opt.step()
    with torch.no_grad():
        used.copy_(start)
    reset_adam_state(opt)
    fresh = torch.nn.Parameter(start.clone())
    opt_fresh = torch.optim.Adam([fresh], lr=0.05)
    for k in range(3):
        for p, o in ((used, opt), (fresh, opt_fresh)):
            p.grad = grads(p.detach(), k)
            o.step()
    torch.testing.assert_close(used.detach(), fresh.detach(), rtol=0, atol=0)
    assert not torch.equal(fresh.detach(), start)
