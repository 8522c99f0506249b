"""Quality gates of tracked sequences and the dataset dashboard (``vhap qa``).

- :mod:`vhap.qa.gates`: a per-sequence verdict from the run's ``metrics.json`` (landmark NME, face PSNR,
  whole-head coverage, divergence) and the export's validation against the GaussianAvatars contract;
- :mod:`vhap.qa.dashboard`: one static HTML page for a whole dataset (sortable, paged, lazy thumbnails).
"""
