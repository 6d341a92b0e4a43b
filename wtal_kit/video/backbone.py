"""A Kinetics-400 video backbone: the VideoResNet-18 family (R3D, MC3, R(2+1)D), 512-d clip features.

Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action Recognition", CVPR 2018:
an 18-layer ResNet on 16-frame 112x112 clips, with

* ``r3d_18``: full 3x3x3 convolutions everywhere;
* ``mc3_18``: 3x3x3 in the first stage of blocks, 1x3x3 (spatial only) in the three others;
* ``r2plus1d_18``: every 3x3x3 convolution factorized into a 1x3x3 spatial and a 3x1x1 temporal
  one, with ``M = floor(27 N_in N_out / (9 N_in + 3 N_out))`` channels between them, so the pair
  has about the parameters of the 3x3x3 it replaces.

Written here from the paper's description, with the **parameter names of torchvision's
``torchvision.models.video`` state dicts** (``stem.0.weight``, ``layer1.0.conv1.0.0.weight``, ...,
``fc.weight``), so that torchvision's published Kinetics-400 weights load with
``load_state_dict(strict=True)``; torchvision itself is not needed (its PyPI wheel does not
import beside the torch this project pins). Parameters with the 400-class ``fc``: r3d_18
33,371,472; mc3_18 11,695,440; r2plus1d_18 31,505,325 (torchvision's documented counts;
tests/test_video.py checks them). The feature is the 512-d global average before ``fc``.

Input as torchvision's Kinetics-400 evaluation transform (the weights' ``transforms()``): frames
resized to 128x171 (height x width, bilinear), centre-cropped to 112x112, scaled to [0, 1] and
normalized with the Kinetics mean and std below.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from wtal_kit.errors import InputError

FEATURE_DIM = 512  # channels of the last stage = the pooled clip feature
KINETICS_CLASSES = 400
RESIZE_HW = (128, 171)  # torchvision's Kinetics transform: every frame to 128 x 171 (height, width)
CROP = 112  # then a centre crop of 112 x 112
MEAN = (0.43216, 0.394666, 0.37645)  # Kinetics-400 RGB mean and std (torchvision's video weights)
STD = (0.22803, 0.22145, 0.216989)
WEIGHT_URLS = {  # torchvision's published Kinetics-400 weights (the file names carry a SHA-256 prefix)
    "r3d_18": "https://download.pytorch.org/models/r3d_18-b3b3357e.pth",
    "mc3_18": "https://download.pytorch.org/models/mc3_18-a90a0ba3.pth",
    "r2plus1d_18": "https://download.pytorch.org/models/r2plus1d_18-91a641e6.pth",
}
BACKBONES = tuple(WEIGHT_URLS)
RANDOM_SEED = 0  # --weights random: the same network every time


# -- the three convolution kinds -------------------------------------------------------------
# Each takes (in, out, mid, stride) and says which stride its block's 1x1x1 shortcut needs.
def full_3d(inp: int, out: int, mid: int, stride: int) -> nn.Module:
    return nn.Conv3d(inp, out, kernel_size=3, stride=stride, padding=1, bias=False)


def spatial_only(inp: int, out: int, mid: int, stride: int) -> nn.Module:
    return nn.Conv3d(inp, out, kernel_size=(1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False)


def factorized(inp: int, out: int, mid: int, stride: int) -> nn.Module:
    """(2+1)D: 1x3x3 spatial conv -> BN -> ReLU -> 3x1x1 temporal conv (names .0, .1, .3)."""
    return nn.Sequential(
        nn.Conv3d(inp, mid, kernel_size=(1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False),
        nn.BatchNorm3d(mid),
        nn.ReLU(inplace=True),
        nn.Conv3d(mid, out, kernel_size=(3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), bias=False),
    )


SHORTCUT_STRIDE = {full_3d: lambda s: (s, s, s), spatial_only: lambda s: (1, s, s), factorized: lambda s: (s, s, s)}


class BasicBlock(nn.Module):
    """Two convolutions with batch norm and a residual connection (a 1x1x1 projection where the shape changes)."""

    def __init__(self, conv, inp: int, out: int, stride: int):
        super().__init__()
        mid = (inp * out * 3 * 3 * 3) // (inp * 3 * 3 + 3 * out)  # (2+1)D's intermediate channels (unused by the others)
        self.conv1 = nn.Sequential(conv(inp, out, mid, stride), nn.BatchNorm3d(out), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv(out, out, mid, 1), nn.BatchNorm3d(out))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inp != out:
            self.downsample = nn.Sequential(
                nn.Conv3d(inp, out, kernel_size=1, stride=SHORTCUT_STRIDE[conv](stride), bias=False), nn.BatchNorm3d(out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + shortcut)


def basic_stem() -> nn.Sequential:
    """3x7x7 conv, spatial stride 2, to 64 channels (R3D, MC3)."""
    return nn.Sequential(
        nn.Conv3d(3, 64, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
        nn.BatchNorm3d(64),
        nn.ReLU(inplace=True),
    )


def factorized_stem() -> nn.Sequential:
    """1x7x7 conv to 45 channels, then 3x1x1 to 64 (R(2+1)D)."""
    return nn.Sequential(
        nn.Conv3d(3, 45, kernel_size=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
        nn.BatchNorm3d(45),
        nn.ReLU(inplace=True),
        nn.Conv3d(45, 64, kernel_size=(3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0), bias=False),
        nn.BatchNorm3d(64),
        nn.ReLU(inplace=True),
    )


ARCHITECTURES = {  # name -> (stem, the convolution of each of the four stages)
    "r3d_18": (basic_stem, (full_3d, full_3d, full_3d, full_3d)),
    "mc3_18": (basic_stem, (full_3d, spatial_only, spatial_only, spatial_only)),
    "r2plus1d_18": (factorized_stem, (factorized, factorized, factorized, factorized)),
}


class VideoResNet(nn.Module):
    """stem -> four stages of two BasicBlocks (64, 128, 256, 512 channels) -> global average -> (fc).

    ``forward`` gives the (B, 512) feature; :meth:`classify` adds ``fc`` (Kinetics-400 logits).
    ``num_classes=0`` builds no ``fc`` (for a state dict without one).
    """

    def __init__(self, name: str, num_classes: int = KINETICS_CLASSES):
        super().__init__()
        if name not in ARCHITECTURES:
            raise InputError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}", field="backbone")
        stem, convs = ARCHITECTURES[name]
        self.name = name
        self.stem = stem()
        channels, widths, strides = 64, (64, 128, 256, 512), (1, 2, 2, 2)
        for i, (conv, width, stride) in enumerate(zip(convs, widths, strides), start=1):
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(conv, channels, width, stride), BasicBlock(conv, width, width, 1)))
            channels = width
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(FEATURE_DIM, num_classes) if num_classes else None

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        x = self.stem(clips)  # (B, 3, 16, 112, 112) -> (B, 64, 16, 56, 56)
        x = self.layer1(x)  # (B, 64, 16, 56, 56)
        x = self.layer2(x)  # (B, 128, 8, 28, 28); MC3 keeps T = 16 from here on
        x = self.layer3(x)  # (B, 256, 4, 14, 14)
        x = self.layer4(x)  # (B, 512, 2, 7, 7)
        return self.avgpool(x).flatten(1)  # (B, 512)

    def classify(self, clips: torch.Tensor) -> torch.Tensor:
        if self.fc is None:
            raise ValueError("this backbone was built without fc")
        return self.fc(self(clips))  # (B, num_classes)

    def reset_parameters(self, generator: torch.Generator) -> None:
        """A random initialization drawn from ``generator`` (He-normal convolutions, unit batch norms, small fc)."""
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu", generator=generator)
            elif isinstance(module, nn.BatchNorm3d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01, generator=generator)
                nn.init.zeros_(module.bias)


def preprocess(clips: torch.Tensor, crop: int = CROP) -> torch.Tensor:
    """Resized uint8 clips (B, T, H, W, 3) -> normalized float clips (B, 3, T, crop, crop), centre-cropped.

    The frames arrive already resized to :data:`RESIZE_HW` (FFmpeg does it while decoding).
    """
    height, width = clips.shape[2], clips.shape[3]
    top, left = (height - crop) // 2, (width - crop) // 2
    if top < 0 or left < 0:
        raise ValueError(f"frames of {height}x{width} are smaller than the {crop}x{crop} crop")
    x = clips[:, :, top: top + crop, left: left + crop].float().div_(255.0)  # (B, T, crop, crop, 3) in [0, 1]
    mean = torch.tensor(MEAN, dtype=x.dtype, device=x.device)
    std = torch.tensor(STD, dtype=x.dtype, device=x.device)
    x = (x - mean) / std  # (B, T, crop, crop, 3)
    return x.permute(0, 4, 1, 2, 3).contiguous()  # (B, 3, T, crop, crop)


def weights_label(weights) -> str:
    """How the weights are recorded in a feature store: "default", "random" or "<file name> sha256:<first 16 hex>"."""
    if weights in ("default", "random"):
        return str(weights)
    path = Path(weights)
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise InputError(f"cannot read the weights ({exc.strerror or type(exc).__name__})", file=path, field="weights") from None
    return f"{path.name} sha256:{digest.hexdigest()[:16]}"


def _state_dict_from_file(path: Path) -> dict:
    if not path.is_file():
        raise InputError("weights file not found", file=path, field="weights")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and unpickler refusals all land here
        raise InputError(f"not a torch state dict ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})",
                         file=path, field="weights") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise InputError("not a state dict (a mapping of parameter names to tensors)", file=path, field="weights")
    return state


def _download(name: str, progress: bool) -> dict:
    url = WEIGHT_URLS[name]
    try:  # torch's own downloader: into the torch hub cache ($TORCH_HOME/hub/checkpoints), checked against the name's hash
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=progress, check_hash=True, weights_only=True)
    except Exception as exc:
        raise InputError(f"cannot download the {name} weights ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}); "
                         "offline, download the file yourself and pass --weights FILE", file=url, field="weights") from None


def load_backbone(name: str = "r2plus1d_18", weights="default", device="cpu", progress: bool = True) -> VideoResNet:
    """The backbone ``name`` in evaluation mode on ``device``.

    weights: ``"default"`` (torchvision's Kinetics-400 file, downloaded once into the torch cache),
    ``"random"`` (seeded with :data:`RANDOM_SEED`: offline and tests; the same FLOPs), or the path of
    a state dict with torchvision's parameter names (loaded with ``weights_only=True``; a file
    that does not fit is one InputError line).
    """
    if name not in ARCHITECTURES:
        raise InputError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}", field="backbone")
    if weights == "random":
        model = VideoResNet(name)
        model.reset_parameters(torch.Generator().manual_seed(RANDOM_SEED))
        return model.eval().to(device)
    where = WEIGHT_URLS[name] if weights == "default" else Path(weights)
    state = _download(name, progress) if weights == "default" else _state_dict_from_file(where)
    fc = state.get("fc.weight")
    model = VideoResNet(name, num_classes=int(fc.shape[0]) if fc is not None and fc.ndim == 2 else 0)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        expected, given = model.state_dict(), state
        missing = [k for k in expected if k not in given]
        unexpected = [k for k in given if k not in expected]
        wrong = [k for k in expected if k in given and tuple(given[k].shape) != tuple(expected[k].shape)]
        detail = "; ".join(f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''} ({len(keys)})"
                           for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys)
        raise InputError(f"not {name} weights: {detail}", file=where, field="weights") from None
    if not all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point()):
        raise InputError("the weights hold NaN or inf", file=where, field="weights")
    return model.eval().to(device)
