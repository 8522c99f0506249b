"""Tracker helpers: device-resident frame selection; the tracker's Adam against ``torch.optim.Adam``."""

import copy

import pytest
import torch

from vhap.track.problem import frames_to_float


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


def _grad_field(p, k):
    return torch.sin(p * (k + 1)) + p**2  # any deterministic gradient field


def test_adam_matches_torch_optim_adam_with_decay_reset_and_state_round_trip():
    from vhap.track.adam import Adam, ExponentialDecay

    start = [torch.linspace(-1, 1, 12), torch.linspace(0.5, 2, 5).reshape(5, 1)]
    mine = [torch.nn.Parameter(s.clone()) for s in start]
    ref = [torch.nn.Parameter(s.clone()) for s in start]
    lrs = (0.05, 0.002)
    opt = Adam([{"params": [p], "lr": lr, "name": f"t{i}"} for i, (p, lr) in enumerate(zip(mine, lrs, strict=True))])
    opt_ref = torch.optim.Adam([{"params": [p], "lr": lr} for p, lr in zip(ref, lrs, strict=True)])
    sched, sched_ref = ExponentialDecay(opt, 0.7), torch.optim.lr_scheduler.ExponentialLR(opt_ref, 0.7)
    for k in range(6):
        for params, o in ((mine, opt), (ref, opt_ref)):
            for p in params:
                p.grad = _grad_field(p.detach(), k)
            o.step()
        if k % 2:
            sched.step()
            sched_ref.step()
    for a, b in zip(mine, ref, strict=True):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-6, atol=1e-7)

    # a state_dict (ours, or torch's own layout) loaded into a fresh optimiser continues exactly like torch's Adam
    def one_more_step(optimizer_cls):
        params = [torch.nn.Parameter(p.detach().clone()) for p in ref]
        groups = [{"params": [p], "lr": 1.0} for p in params]
        return params, (Adam(groups) if optimizer_cls is Adam else torch.optim.Adam(groups))

    sources = (copy.deepcopy(opt.state_dict()), copy.deepcopy(opt_ref.state_dict()))
    expect, opt_expect = one_more_step(torch.optim.Adam)
    opt_expect.load_state_dict(copy.deepcopy(opt_ref.state_dict()))  # torch's load aliases the given tensors
    for p in expect:
        p.grad = _grad_field(p.detach(), 9)
    opt_expect.step()
    for source in sources:
        twin, opt2 = one_more_step(Adam)
        opt2.load_state_dict(source)
        for p in twin:
            p.grad = _grad_field(p.detach(), 9)
        opt2.step()
        for a, b in zip(twin, expect, strict=True):
            torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-6, atol=1e-7)

    # reset(): exactly a new optimiser, tensors keep their addresses (CUDA-graph safety)
    addresses = [s["exp_avg"].data_ptr() for s in opt.state.values()]
    with torch.no_grad():
        for p, s in zip(mine, start, strict=True):
            p.copy_(s)
    opt.reset()
    for g, lr in zip(opt.param_groups, lrs, strict=True):
        g["lr"].fill_(lr)
    fresh = [torch.nn.Parameter(s.clone()) for s in start]
    opt_fresh = torch.optim.Adam([{"params": [p], "lr": lr} for p, lr in zip(fresh, lrs, strict=True)])
    for k in range(3):
        for params, o in ((mine, opt), (fresh, opt_fresh)):
            for p in params:
                p.grad = _grad_field(p.detach(), k)
            o.step()
    for a, b in zip(mine, fresh, strict=True):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-6, atol=1e-7)
    assert [s["exp_avg"].data_ptr() for s in opt.state.values()] == addresses


def test_background_writer_keeps_order_and_reports_errors(tmp_path):
    from vhap.track.checkpoint import BackgroundWriter

    writer = BackgroundWriter()
    log = []
    for i in range(3):
        writer.submit(log.append, i)
    writer.wait()
    assert log == [0, 1, 2]

    def fail():
        raise OSError("disk full")

    writer.submit(fail)
    with pytest.raises(OSError, match="disk full"):
        writer.wait()  # the write's error reaches the main thread
    writer.wait()  # and only once


def test_snapshot_is_independent_of_later_updates():
    from vhap.track.checkpoint import RunState, snapshot_checkpoint

    params = torch.nn.ParameterDict({"x": torch.nn.Parameter(torch.zeros(3))})
    run = RunState()
    run.loss_history.append({"stage": "a", "step": 1, "total": 1.0})
    snap = snapshot_checkpoint(fingerprint="f", params=params, run=run, generator=None)
    with torch.no_grad():
        params["x"].add_(1.0)  # the run goes on while the snapshot is being written
    run.loss_history.append({"stage": "a", "step": 2, "total": 0.5})
    run.loss_history[0]["total"] = 9.0
    assert snap["params"]["x"].tolist() == [0.0, 0.0, 0.0]
    assert snap["loss_history"] == [{"stage": "a", "step": 1, "total": 1.0}]


def test_run_folder_swap_survives_a_cut_between_its_renames(tmp_path):
    """Where the file system has no atomic exchange, an overwrite is two renames; a process killed between them
    leaves either run for the next start to settle — never neither."""
    from vhap.track.runfolder import RunFolder, exchange, recover_swap, retired_path, staging_path

    final = tmp_path / "run"

    def make(old: bool, new: bool, parked: bool):
        import shutil

        for p in (final, staging_path(final), retired_path(final)):
            shutil.rmtree(p, ignore_errors=True)
        if old:
            (retired_path(final) if parked else final).mkdir()
            (retired_path(final) if parked else final).joinpath("which").write_text("old")
        if new:
            staging_path(final).mkdir()
            staging_path(final).joinpath("which").write_text("new")
            staging_path(final).joinpath("DONE").write_text("")

    make(old=True, new=True, parked=True)  # cut after the old run was parked
    recover_swap(final)
    assert (final / "which").read_text() == "new" and not retired_path(final).exists()
    make(old=True, new=False, parked=True)  # parked, and the new run is not complete: the old one goes back
    recover_swap(final)
    assert (final / "which").read_text() == "old"
    make(old=True, new=True, parked=False)
    exchange(staging_path(final), final)
    assert (final / "which").read_text() == "new" and (staging_path(final) / "which").read_text() == "old"
    folder = RunFolder.open(final, None, overwrite=False)  # a new start clears the leftover staging folder
    assert folder.work == final and not staging_path(final).exists()
    assert RunFolder.open(final, None, overwrite=True).work == staging_path(final)
