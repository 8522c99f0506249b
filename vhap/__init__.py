"""VHAP: photometric head tracking with adaptive appearance priors (clean-room re-implementation).

Layers (lower never imports higher): ``config``/``utils`` → ``model`` → ``render`` → ``data`` /
``preprocess`` → ``track`` → ``export`` → ``viewer``; ``cli`` sits on top and only parses configs.
"""

__version__ = "0.1.0"
