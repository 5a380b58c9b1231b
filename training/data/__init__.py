"""Training data: a torch dataset over the dataset pipeline's Parquet shards, an on-the-fly one
that corrupts, decodes and compensates clean photos in DataLoader workers, and the crop sampler
both share. Examples are made by the engine's SCA + fill route, as ``acir restore`` makes them."""
from training.data.crops import CropSampler, to_tensor
from training.data.example import Example, example_from_bytes, example_from_row, gca_inputs
from training.data.onthefly import OnTheFlyCrops
from training.data.shards import ShardCrops, collate_crops

__all__ = ["CropSampler", "Example", "OnTheFlyCrops", "ShardCrops", "collate_crops", "example_from_bytes",
           "example_from_row", "gca_inputs", "to_tensor"]
