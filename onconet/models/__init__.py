"""The paired-exam response model: backbones, fusion, LightningModule."""
