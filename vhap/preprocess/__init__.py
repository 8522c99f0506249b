"""Preprocessing: frame extraction (+ NeRSemble colour correction), matting and landmark detection.

Library entry points: :func:`vhap.preprocess.extract.preprocess`,
:func:`vhap.preprocess.matting.run_matting`, :func:`vhap.preprocess.landmarks.detect_landmarks`.
"""
