"""Where the preprocessing used to live: it is :mod:`dense_edge.preprocess` now (a leaf module
every stage and the device runtime may import). Kept so existing imports keep working; new code
imports :mod:`dense_edge.preprocess`.
"""

from dense_edge.preprocess import Preprocess, check_image, decode_image, for_config

__all__ = ["Preprocess", "check_image", "decode_image", "for_config"]
