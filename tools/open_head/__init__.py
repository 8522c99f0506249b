"""Generator of the project's open head model (``vhap/model/open_head/open_head.npz``).

``python -m tools.open_head.generate`` regenerates the committed asset and ``python -m tools.open_head.preview
--out docs/open_head`` its renders; ``README.md`` in this folder describes the recipe. Only the model file and its
loader ship in the runtime package (:mod:`vhap.model.open_head`).
"""
