"""Tiny random-weight diffusers image pipelines, built in code: Stable Diffusion
1.x/2.x, SDXL, Stable Diffusion 3 and Flux. Each ``build_*`` saves a complete
pipeline with ``save_pretrained``, so it loads back through
``DiffusionPipeline.from_pretrained`` as a downloaded model folder would, its
``model_index.json`` naming the class. Nothing is downloaded: the tokenizers
are the video tests' fixed vocabularies (tests/video/tiny_pipelines.py).

Sizes follow diffusers' own fast tests: a call at 32x32 with 2 steps takes a
few hundredths of a second on CPU."""
from __future__ import annotations

from pathlib import Path

import torch

from tests.video.tiny_pipelines import _save, _t5_encoder, clip_tokenizer, t5_tokenizer


def _clip(projection: bool = False, hidden: int = 32, projection_dim: int = 32):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
    tokenizer = clip_tokenizer()
    config = CLIPTextConfig(bos_token_id=0, eos_token_id=1, hidden_size=hidden, intermediate_size=37,
                            layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2, pad_token_id=1,
                            vocab_size=len(tokenizer), hidden_act="gelu", projection_dim=projection_dim)
    torch.manual_seed(0)
    model = (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()
    return model, tokenizer


def _vae(latent_channels: int = 4, **kw):
    from diffusers import AutoencoderKL
    torch.manual_seed(0)
    return AutoencoderKL(block_out_channels=[4, 8], in_channels=3, out_channels=3,
                         down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                         latent_channels=latent_channels, norm_num_groups=2, sample_size=32, **kw)


def build_sd(path) -> Path:
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(4, 8), layers_per_block=1, sample_size=32, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=2)
    text_encoder, tokenizer = _clip()
    pipe = StableDiffusionPipeline(unet=unet, vae=_vae(), text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=DDIMScheduler(clip_sample=False), safety_checker=None,
                                   feature_extractor=None, image_encoder=None, requires_safety_checker=False)
    return _save(pipe, path)


def build_sdxl(path) -> Path:
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(4, 8), layers_per_block=1, sample_size=32, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                                use_linear_projection=True, addition_embed_type="text_time",
                                addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
                                projection_class_embeddings_input_dim=80, cross_attention_dim=64, norm_num_groups=2)
    text_encoder, tokenizer = _clip()
    text_encoder_2, tokenizer_2 = _clip(projection=True)
    pipe = StableDiffusionXLPipeline(unet=unet, vae=_vae(), text_encoder=text_encoder, tokenizer=tokenizer,
                                     text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2,
                                     scheduler=EulerDiscreteScheduler(), image_encoder=None, feature_extractor=None)
    return _save(pipe, path)


def build_sd3(path) -> Path:
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    torch.manual_seed(0)
    # 16 latent channels, as the real SD3's: its inpainting pipeline takes no other count
    transformer = SD3Transformer2DModel(sample_size=32, patch_size=1, in_channels=16, num_layers=1,
                                        attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32,
                                        joint_attention_dim=32, pooled_projection_dim=64, out_channels=16)
    text_encoder, tokenizer = _clip(projection=True)
    text_encoder_2, tokenizer_2 = _clip(projection=True)
    t5 = t5_tokenizer()
    pipe = StableDiffusion3Pipeline(transformer=transformer,
                                    vae=_vae(16, shift_factor=0.0609, scaling_factor=1.5035),
                                    text_encoder=text_encoder, tokenizer=tokenizer, text_encoder_2=text_encoder_2,
                                    tokenizer_2=tokenizer_2, text_encoder_3=_t5_encoder(len(t5)), tokenizer_3=t5,
                                    scheduler=FlowMatchEulerDiscreteScheduler())
    return _save(pipe, path)


def build_flux(path) -> Path:
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                         pooled_projection_dim=32, axes_dims_rope=[4, 4, 8])
    text_encoder, tokenizer = _clip()
    t5 = t5_tokenizer()
    from diffusers import AutoencoderKL
    torch.manual_seed(0)
    vae = AutoencoderKL(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
                        latent_channels=1, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
                        shift_factor=0.0609, scaling_factor=1.5035)
    pipe = FluxPipeline(transformer=transformer, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                        text_encoder_2=_t5_encoder(len(t5)), tokenizer_2=t5,
                        scheduler=FlowMatchEulerDiscreteScheduler())
    return _save(pipe, path)
