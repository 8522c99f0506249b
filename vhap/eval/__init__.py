"""Evaluation of tracked runs that needs no ground-truth mesh (real video): :mod:`vhap.eval.whole_head`."""
