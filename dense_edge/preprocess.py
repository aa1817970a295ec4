"""The one preprocessing definition: image -> float32 CHW tensor.

It is stored in every manifest and used unchanged by training, calibration, validation and the
device runtime, so an engine always sees what the float model saw. It needs only numpy and Pillow
(no torch), because device apps import it.

Steps, in order: decode -> convert to ``color`` (``L`` or ``RGB``) -> resize -> centre crop ->
to float, times ``scale`` -> per channel ``(x - mean) / std`` -> channels first. ``resize`` is
either one number (the shorter side, aspect kept, as torchvision's ``Resize(256)``) or ``[H, W]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dense_edge.errors import DataError, UserError

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
_COLOUR_MODES = ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")
_PALETTE_MODES = ("P", "PA")  # colour or grey: judged by the colours the palette really uses
_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # 16-bit grey ("I": 32-bit container)
_ORIENTATION = 0x0112  # the EXIF tag phones set instead of rotating the pixels


@dataclass(frozen=True)
class Preprocess:
    input_size: tuple[int, int]  # (H, W) of the tensor the model takes
    color: str = "RGB"  # "RGB" or "L"
    channel_order: str = "RGB"  # "RGB" or "BGR" (for 3 channels)
    resize: int | tuple[int, int] | None = None
    crop: bool = True  # centre-crop to input_size after resize
    interpolation: str = "bilinear"
    scale: float = 1 / 255
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    layout: str = "NCHW"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.color not in ("RGB", "L"):
            raise UserError(f"preprocess.color: expected 'RGB' or 'L', got {self.color!r}")
        if self.channel_order not in ("RGB", "BGR"):
            raise UserError(
                f"preprocess.channel_order: expected 'RGB' or 'BGR', got {self.channel_order!r}"
            )
        if self.interpolation not in _INTERPOLATIONS:
            raise UserError(
                f"preprocess.interpolation: expected one of {_INTERPOLATIONS}, "
                f"got {self.interpolation!r}"
            )
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise UserError(
                f"preprocess.mean/std: need {self.channels} values for color {self.color}, "
                f"got {len(self.mean)} and {len(self.std)}"
            )
        if any(s <= 0 for s in self.std):
            raise UserError("preprocess.std: every value must be > 0")

    @property
    def channels(self) -> int:
        return 1 if self.color == "L" else 3

    @property
    def input_shape(self) -> list[int]:
        return [self.channels, *self.input_size]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        d["input_size"] = list(self.input_size)
        d["resize"] = list(self.resize) if isinstance(self.resize, tuple) else self.resize
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocess:
        d = dict(d)
        d["input_size"] = tuple(d["input_size"])
        if isinstance(d.get("resize"), list):
            d["resize"] = tuple(d["resize"])
        d["mean"] = tuple(d.get("mean", cls.mean))
        d["std"] = tuple(d.get("std", cls.std))
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        unknown = set(d) - known
        if unknown:
            raise UserError(f"preprocess: unknown keys {sorted(unknown)}")
        return cls(**d)

    # -- applying ---------------------------------------------------------------------------

    def load_image(self, path: str | Path) -> np.ndarray:
        """Decode an image file into a uint8 HWC array in this definition's colour mode."""
        try:
            im = decode_image(path)
        except DataError as exc:
            if exc.fix is not None or "not found" in str(exc):
                raise
            raise DataError(str(exc), fix="remove or replace the file") from None
        try:
            self.check_colour(im)
        except DataError as exc:
            raise DataError(str(exc), path=path) from None
        return self.from_pil(im)

    def check_colour(self, im: Any) -> None:
        """Refuse a colour image for a grey model unless the preprocessing declares a resize.

        The one colour policy: RGB, RGBA, CMYK ... and palette images whose palette holds
        colour are all colour; a palette of greys is grey."""
        if self.color == "L" and self.resize is None and _is_colour(im):
            # Throwing colour away is a decision of the preprocessing, as resizing is.
            raise DataError(
                f"image is {im.mode} (colour), the model takes grey (L) images and its "
                f"preprocessing declares no resize or conversion",
                fix="supply grey images, or set preprocess.resize to convert and resize",
            )

    def from_pil(self, im: Any) -> np.ndarray:
        """uint8 HWC pixels in this definition's colour mode, upright (EXIF orientation
        applied) and 16-bit grey scaled to 8 bits (never clipped at 255)."""
        im = _to_8bit(_upright(im))
        if im.mode != self.color:
            im = im.convert(self.color)
        arr = np.asarray(im, dtype=np.uint8)
        return arr[:, :, None] if arr.ndim == 2 else arr

    def _geometry(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        th, tw = self.input_size
        if self.resize is None and (h, w) == (th, tw):
            return img
        if self.resize is None and not self.crop:
            # Resizing is a decision of the preprocessing, never a silent rescue of odd images.
            raise DataError(
                f"image is {h}x{w}, the model takes {th}x{tw} and its preprocessing declares no "
                f"resize",
                fix=f"supply {th}x{tw} images, or set preprocess.resize: [{th}, {tw}] and retrain",
            )
        from PIL import Image

        resample = {
            "nearest": Image.Resampling.NEAREST,
            "bilinear": Image.Resampling.BILINEAR,
            "bicubic": Image.Resampling.BICUBIC,
        }[self.interpolation]
        if self.resize is None:
            size = (th, tw) if not self.crop else _shorter_side(h, w, min(th, tw))
        elif isinstance(self.resize, int):
            size = _shorter_side(h, w, self.resize)
        else:
            size = (self.resize[0], self.resize[1])
        if size != (h, w):
            pil = Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)
            img = np.asarray(pil.resize((size[1], size[0]), resample), dtype=np.uint8)
            img = img[:, :, None] if img.ndim == 2 else img
        h, w = img.shape[:2]
        if (h, w) != (th, tw):
            if not self.crop or h < th or w < tw:
                pil = Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)
                img = np.asarray(pil.resize((tw, th), resample), dtype=np.uint8)
                img = img[:, :, None] if img.ndim == 2 else img
            else:
                top, left = (h - th) // 2, (w - tw) // 2
                img = img[top : top + th, left : left + tw]
        return img

    def check_array(self, img: np.ndarray, what: str = "image") -> np.ndarray:
        if img.ndim == 2:
            img = img[:, :, None]
        if img.ndim != 3:
            raise DataError(f"{what}: expected an HxW or HxWxC array, got shape {img.shape}")
        if img.shape[2] != self.channels:
            raise DataError(
                f"{what}: has {img.shape[2]} channels, the model takes {self.channels} "
                f"({self.color})",
                fix=f"convert images to {self.color}",
            )
        if img.dtype != np.uint8:
            raise DataError(f"{what}: expected uint8 pixels, got {img.dtype}")
        return img

    def __call__(self, img: np.ndarray) -> np.ndarray:
        """uint8 HWC (in ``color`` mode, RGB order) -> float32 CHW."""
        out: np.ndarray = self.batch([img])[0]
        return out

    def batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """A list of uint8 HWC images -> float32 NCHW."""
        th, tw = self.input_size
        out = np.empty((len(images), self.channels, th, tw), dtype=np.float32)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(-1, 1, 1)
        inv_std = (1.0 / np.asarray(self.std, dtype=np.float32)).reshape(-1, 1, 1)
        for i, img in enumerate(images):
            if img.ndim >= 2 and min(img.shape[:2]) < 1:
                raise DataError(f"image has shape {img.shape}: no pixels")
            img = self._geometry(self.check_array(img))
            if self.channel_order == "BGR" and self.channels == 3:
                img = img[:, :, ::-1]
            chw = img.transpose(2, 0, 1).astype(np.float32) * np.float32(self.scale)
            out[i] = (chw - mean) * inv_std
        return out


def _is_colour(im: Any) -> bool:
    if im.mode in _COLOUR_MODES:
        return True
    if im.mode in _PALETTE_MODES:
        rgb = np.asarray(im.convert("RGB"))
        return bool((rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 1] != rgb[..., 2]).any())
    return False


def _upright(im: Any) -> Any:
    """The image as its EXIF orientation says it is seen (a phone photo stored rotated)."""
    try:
        orientation = im.getexif().get(_ORIENTATION, 1)
    except Exception:  # a broken EXIF block: the pixels as stored
        return im
    if orientation in (None, 1):
        return im
    from PIL import ImageOps

    return ImageOps.exif_transpose(im)


def _to_8bit(im: Any) -> Any:
    """16-bit grey scaled to 0..255 (65535 -> 255), as the 8-bit pipeline expects; a float
    image, or an integer image outside 0..65535, is refused (its range is unknown)."""
    from PIL import Image

    if im.mode == "F" or (im.mode == "I" and not _fits_16bit(im)):
        raise DataError(
            f"image is {im.mode} ({'32-bit float' if im.mode == 'F' else '32-bit integer'} "
            f"pixels): dense-edge reads 8- and 16-bit images only",
            fix="save the image with 8- or 16-bit pixels",
        )
    if im.mode not in _WIDE_GREY:
        return im
    wide = np.asarray(im).astype(np.uint32)
    return Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8))


def _fits_16bit(im: Any) -> bool:
    lo, hi = im.getextrema()
    return bool(lo >= 0 and hi <= 65535)


def decode_image(path: str | Path) -> Any:
    """Open and fully decode an image file (a PIL image), or a DataError naming the file.

    Images past Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) are refused
    before their pixels are decoded: a small file must not expand into gigabytes."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                im.load()  # the pixels are in memory; closing the file keeps them
                return im
    except FileNotFoundError:
        raise DataError("image not found", path=p) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(_BOMB, path=p) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot decode image ({exc.__class__.__name__})", path=p) from None


_BOMB = "image is too large to decode safely (a decompression bomb?)"


def check_image(path: str | Path, *, fix: str | None = None) -> None:
    """A cheap check of one image file, without decoding its pixels: that Pillow recognises
    it, that its size is under the decompression-bomb limit, and (``verify``) that its
    structure is intact. A DataError names the file."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                im.verify()
    except FileNotFoundError:
        raise DataError("image not found", path=p, fix=fix) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(_BOMB, path=p, fix=fix) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(
            f"cannot decode image ({exc.__class__.__name__})", path=p, fix=fix
        ) from None


def _shorter_side(h: int, w: int, side: int) -> tuple[int, int]:
    if h <= w:
        return side, max(1, round(w * side / h))
    return max(1, round(h * side / w)), side


def for_config(config: Any, input_size: tuple[int, int] | None = None) -> Preprocess:
    """The default preprocessing of a model configuration."""
    size = tuple(input_size) if input_size else tuple(config.input_size)
    resize = config.resize
    if resize is not None and input_size is not None:
        # Keep the configuration's resize/crop ratio (e.g. 256/224) at other sizes.
        resize = round(resize * size[0] / config.input_size[0])
    return Preprocess(
        input_size=size,  # type: ignore[arg-type]
        color="L" if config.in_channels == 1 else "RGB",
        resize=resize,
        crop=resize is not None,  # CIFAR-style models take whole images at their native size
        mean=tuple(config.mean),
        std=tuple(config.std),
    )
