"""Tiny random-weight diffusers video pipelines, built in code.

Each ``build_*`` function constructs a complete pipeline (transformer, VAE, scheduler,
text encoder(s) and tokenizer(s)) with very small configs and seeded random weights,
then ``save_pretrained``s it into ``path``.  The folder loads back with
``diffusers.DiffusionPipeline.from_pretrained(path)`` exactly like a downloaded model
folder, and its ``model_index.json`` names the pipeline class in ``_class_name``.

Nothing is downloaded: the tokenizers are built from fixed vocabularies (the
transformers 5 tokenizer classes build their ``tokenizers`` backend from ``vocab=`` /
``merges=``, and rebuild it the same way when loading ``tokenizer.json``).

Component sizes follow diffusers' own fast pipeline tests.  What the tiny configs accept
(CPU, float32, ``num_inference_steps=2``, ``output_type="np"``: 0.03-0.1 s a call with one
torch thread; ``.frames`` has shape ``(1, frames, height, width, 3)``, values in [0, 1]):

===============  ===================  ==================================  ======================
family           VAE spatial/temporal  height, width                      num_frames -> frames
===============  ===================  ==================================  ======================
ltx (t2v, i2v)   4 / 4 (real: 32/8)    multiples of 32 (pipeline check)    4k+1 kept (9, 13);
                                                                           others round down
wan (t2v, i2v)   8 / 4                 multiples of 16 (8 x patch 2)       4k+1 kept; others
                                                                           rounded (8 -> 9)
cogvideox        8 / 4                 multiples of 16, at least 16        8k+1 kept (9, 17);
                                                                           13 -> 16, 5 -> 8
hunyuan          8 / 4                 multiples of 16 (pipeline check)    4k+1 kept (9, 13);
                                                                           8 -> 5
===============  ===================  ==================================  ======================

``SMALL_CALL`` holds one quick size per family.  The pipelines' defaults (480x848 and
up, 49-129 frames) are far too large for CPU: always pass height, width and num_frames.
The scale factors are attributes with family-specific names: LTX has
``pipe.vae_spatial_compression_ratio`` / ``pipe.vae_temporal_compression_ratio``; Wan,
CogVideoX and HunyuanVideo have ``pipe.vae_scale_factor_spatial`` /
``pipe.vae_scale_factor_temporal``.

``WanImageToVideoPipeline`` (diffusers 0.42.1) calls ``ftfy.fix_text`` unconditionally,
so running it needs the ``ftfy`` package; building and loading it does not.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

# Words given their own token, so ordinary prompts do not collapse to <unk>.
WORDS = (
    "a an the of on in at with and to is are by for from cat dog monkey bird fish horse "
    "dance dancing run running walk walking jump fly flying swim play sits sitting red green "
    "blue yellow black white small big tiny sky sea beach city street forest field room night "
    "day sun moon snow rain light camera video scene slow fast close up shot view"
).split()
_ASCII = [chr(c) for c in range(33, 127)]  # printable ASCII, no space


# --------------------------------------------------------------------------- tokenizers
def t5_tokenizer():
    """A T5 (SentencePiece-Unigram style) tokenizer: specials, ``▁word`` pieces and every
    printable ASCII character, so any ASCII prompt segments without <unk>."""
    from transformers import T5TokenizerFast

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [("▁" + w, -1.0) for w in WORDS]
    vocab += [(c, -5.0) for c in _ASCII]
    # id 0 = pad, 1 = eos, 2 = unk, as in real T5 vocabularies.
    return T5TokenizerFast(vocab=vocab, extra_ids=0, model_max_length=512)


# Words of HunyuanVideo's default prompt template, so it tokenizes to roughly as many
# tokens as with the real tokenizer and a prompt still fits after its crop_start (95).
_TEMPLATE_WORDS = (
    "system user Describe describe video by detailing following aspects main content and theme "
    "color shape size texture quantity text spatial relationships objects Actions actions events "
    "behaviors temporal physical movement changes background environment light style atmosphere "
    "camera angles movements transitions used The"
).split()
_LLAMA_SPECIALS = ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]


def llama_tokenizer():
    """A Llama (BPE with byte fallback) tokenizer: characters, ``▁word`` tokens reached by
    prefix merges, a pad token and the Llama-3 header tokens used by HunyuanVideo's
    prompt template."""
    from transformers import LlamaTokenizerFast

    pieces = ["<unk>", "<s>", "</s>", "<pad>"] + [f"<0x{b:02X}>" for b in range(256)] + ["▁"] + _ASCII
    merges = []
    for word in dict.fromkeys(WORDS + _TEMPLATE_WORDS):
        piece = "▁" + word
        for i in range(2, len(piece) + 1):
            if piece[:i] not in pieces:
                pieces.append(piece[:i])
                merges.append((piece[:i - 1], piece[i - 1]))
    merges.sort(key=lambda m: len(m[0]))  # shorter prefixes first: every merge extends a prefix
    vocab = {p: i for i, p in enumerate(pieces + _LLAMA_SPECIALS)}
    return LlamaTokenizerFast(vocab=vocab, merges=merges, pad_token="<pad>", padding_side="right",
                              additional_special_tokens=_LLAMA_SPECIALS, model_max_length=4096)


def clip_tokenizer():
    """A byte-level CLIP BPE tokenizer without merges (one token per byte)."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizerFast

    chars = sorted(pre_tokenizers.ByteLevel.alphabet())  # the 256 byte-level symbols
    pieces = ["<|startoftext|>", "<|endoftext|>"] + chars + [c + "</w>" for c in chars]
    vocab = {p: i for i, p in enumerate(pieces)}
    return CLIPTokenizerFast(vocab=vocab, merges=[], model_max_length=77)


# --------------------------------------------------------------------------- encoders
def _t5_encoder(vocab_size: int, *, umt5: bool = False):
    """A 32-wide, 2-layer T5 (or UMT5) encoder, in eval mode (no dropout)."""
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    config_cls, model_cls = (UMT5Config, UMT5EncoderModel) if umt5 else (T5Config, T5EncoderModel)
    config = config_cls(
        vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, dropout_rate=0.0, pad_token_id=0, eos_token_id=1,
        decoder_start_token_id=0, is_encoder_decoder=False, use_cache=False,
    )
    torch.manual_seed(0)
    return model_cls(config).eval()


def _save(pipe, path) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(path)
    return path


# --------------------------------------------------------------------------- families
def build_ltx(path, *, image_to_video: bool = False) -> Path:
    """LTX-Video (``LTXPipeline`` / ``LTXImageToVideoPipeline``).

    The tiny VAE compresses 4x spatially and 4x temporally (the real one: 32x / 8x), but
    the pipeline still requires height/width divisible by 32; use 32x32, 9 frames.
    """
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4,
        attention_head_dim=8, cross_attention_dim=32, num_layers=1, caption_channels=32,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8,
        block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False), upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False, patch_size=1, patch_size_t=1,
        encoder_causal=True, decoder_causal=False,
    )
    scheduler = FlowMatchEulerDiscreteScheduler()
    tokenizer = t5_tokenizer()
    text_encoder = _t5_encoder(len(tokenizer))
    cls = LTXImageToVideoPipeline if image_to_video else LTXPipeline
    pipe = cls(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
               transformer=transformer)
    return _save(pipe, path)


def build_wan(path, *, image_to_video: bool = False) -> Path:
    """Wan 2.1 (``WanPipeline`` / ``WanImageToVideoPipeline``, the latter with a tiny CLIP
    vision encoder and image processor, as Wan 2.1 I2V has).

    VAE: 8x spatial, 4x temporal; transformer patch (1, 2, 2) so height/width must be
    multiples of 16; frames 4k+1.
    """
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanPipeline,
        WanTransformer3DModel,
    )

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    scheduler = FlowMatchEulerDiscreteScheduler(shift=7.0)
    tokenizer = t5_tokenizer()
    text_encoder = _t5_encoder(len(tokenizer), umt5=True)
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
        in_channels=36 if image_to_video else 16, out_channels=16, text_dim=32, freq_dim=256,
        ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32, image_dim=4 if image_to_video else None,
    )
    common = dict(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler,
                  transformer=transformer, transformer_2=None)
    if not image_to_video:
        return _save(WanPipeline(**common), path)

    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2,
        image_size=32, intermediate_size=16, patch_size=1,
    )).eval()
    image_processor = CLIPImageProcessor(crop_size=32, size=32)
    return _save(WanImageToVideoPipeline(image_encoder=image_encoder, image_processor=image_processor,
                                         **common), path)


def build_cogvideox(path) -> Path:
    """CogVideoX 1.0 style (``CogVideoXPipeline``, sincos positional embeddings).

    VAE: 8x spatial, 4x temporal; transformer patch 2 so height/width must be multiples
    of 16.  ``max_text_seq_length`` is the pipeline default (226) so a plain call works.
    """
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel

    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4, attention_head_dim=8, in_channels=4, out_channels=4, time_embed_dim=2,
        text_embed_dim=32, num_layers=1, sample_width=2, sample_height=2, sample_frames=9,
        patch_size=2, temporal_compression_ratio=4, max_text_seq_length=226,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4, up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8), latent_channels=4, layers_per_block=1, norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    scheduler = CogVideoXDDIMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, prediction_type="v_prediction",
        rescale_betas_zero_snr=True, timestep_spacing="trailing", set_alpha_to_one=True, clip_sample=False,
    )
    tokenizer = t5_tokenizer()
    text_encoder = _t5_encoder(len(tokenizer))
    pipe = CogVideoXPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae,
                             transformer=transformer, scheduler=scheduler)
    return _save(pipe, path)


def build_hunyuan(path) -> Path:
    """HunyuanVideo (``HunyuanVideoPipeline``): Llama text encoder + CLIP text encoder.

    VAE: 8x spatial, 4x temporal; transformer patch 1 so height/width multiples of 8
    work (16x16 is the smallest tested); frames 4k+1.  The character-level Llama
    tokenizer makes the default prompt template longer than its ``crop_start`` (95), so
    plain calls without ``prompt_template`` work.
    """
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideoPipeline,
        HunyuanVideoTransformer3DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel

    torch.manual_seed(0)
    transformer = HunyuanVideoTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, patch_size=1, patch_size_t=1, guidance_embeds=True,
        text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(2, 4, 4),
    )
    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo(
        in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("HunyuanVideoDownBlock3D",) * 4, up_block_types=("HunyuanVideoUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8), layers_per_block=1, act_fn="silu", norm_num_groups=4,
        scaling_factor=0.476986, spatial_compression_ratio=8, temporal_compression_ratio=4,
        mid_block_add_attention=True,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=7.0)

    tokenizer = llama_tokenizer()
    torch.manual_seed(0)
    text_encoder = LlamaModel(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=37, num_attention_heads=4,
        num_key_value_heads=4, num_hidden_layers=2, max_position_embeddings=1024, rms_norm_eps=1e-5,
        hidden_act="gelu", bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )).eval()

    tokenizer_2 = clip_tokenizer()
    torch.manual_seed(0)
    text_encoder_2 = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer_2), hidden_size=8, intermediate_size=37, num_attention_heads=4,
        num_hidden_layers=2, max_position_embeddings=77, layer_norm_eps=1e-5, hidden_act="gelu",
        projection_dim=32, bos_token_id=tokenizer_2.bos_token_id, eos_token_id=tokenizer_2.eos_token_id,
        pad_token_id=tokenizer_2.pad_token_id,
    )).eval()

    pipe = HunyuanVideoPipeline(text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer,
                                vae=vae, scheduler=scheduler, text_encoder_2=text_encoder_2,
                                tokenizer_2=tokenizer_2)
    return _save(pipe, path)


FAMILIES: dict[str, Callable[..., Path]] = {
    "ltx": build_ltx,
    "wan": build_wan,
    "cogvideox": build_cogvideox,
    "hunyuan": build_hunyuan,
}

# Sizes that each family accepts, quickly: (height, width, num_frames) -> output frames.
SMALL_CALL: dict[str, dict[str, int]] = {
    "ltx": {"height": 32, "width": 32, "num_frames": 9},
    "wan": {"height": 16, "width": 16, "num_frames": 9},
    "cogvideox": {"height": 16, "width": 16, "num_frames": 9},
    "hunyuan": {"height": 16, "width": 16, "num_frames": 9},
}
