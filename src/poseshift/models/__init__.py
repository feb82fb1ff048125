"""Networks and the keypoint codec: backbones, heads, scoremap encoding and decoding."""
