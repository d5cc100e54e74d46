"""Feature networks for the style loss: torchvision VGG with ImageNet weights, or a seeded random bank.

A FeatureNet maps images (B, 3, H, W) with values in [0, 1] to a dict of named feature maps
(B, C, h, w), running only the layers it was asked for.
"""

from .network import FeatureNet, build_feature_net

__all__ = ["FeatureNet", "build_feature_net"]
