"""A full-size LTX-Video pipeline with random weights, for bench/video.py
--full: speed does not depend on the weights' values, and none can be
downloaded here.

The denoiser and the VAE are the real architecture (diffusers' defaults for
LTXVideoTransformer3DModel and AutoencoderKLLTXVideo are LTX-Video's 2B
config: 28 layers, 32 heads x 64, 128 latent channels, 32x spatial and 8x
temporal compression). The text encoder keeps T5-XXL's width (4096, what the
denoiser reads) with 2 layers instead of 24: it runs once per video, well
under 1% of a 121-frame generation, and a full one would add 19 GB to write
for no change in the figures. Saved in bfloat16 (about 5 GB).
"""
from __future__ import annotations

from pathlib import Path

import torch


def build_full_ltx(path: Path, *, layers: int | None = None) -> Path:
    """`layers`: fewer transformer layers, only to check this builder quickly."""
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    from tests.video.tiny_pipelines import t5_tokenizer

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(**({"num_layers": layers} if layers else {}))
    vae = AutoencoderKLLTXVideo()
    tokenizer = t5_tokenizer()
    text_encoder = T5EncoderModel(T5Config(
        vocab_size=len(tokenizer), d_model=4096, d_kv=64, d_ff=10240, num_layers=2, num_heads=64,
        dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, is_encoder_decoder=False,
        use_cache=False, feed_forward_proj="gated-gelu")).eval()
    pipe = LTXPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder,
                       tokenizer=tokenizer, transformer=transformer)
    pipe.to(torch.bfloat16)
    path.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(path)
    return path
