//! Which Hugging Face BLT tensor is which of our parameters, written once for both directions.
//!
//! The walk visits every parameter of a [`Blt`] (and of an [`EntropyModel`]) with the name
//! transformers gives it and the kind of layout change it needs: a projection (torch `[out,
//! in]`, Burn `[in, out]`), the thirds of a fused `qkv` (torch's separate `q_proj`, `k_proj`,
//! `v_proj`: queries, then keys, then values), a table (`[rows, d]` on both sides), or a vector (norm gains,
//! `weight` there, `gamma` here). Import ([`super::weights`]) and export ([`super::export`])
//! are the two [`Visitor`]s.

use blt_core::{CrossAttention, RmsNorm, SwiGlu, TransformerBlock};
use burn::{
    module::Param,
    nn::Linear,
    tensor::{Tensor, backend::Backend},
};

use crate::{
    blt::Blt, decoder::LocalDecoder, embedding::ByteEmbedding, encoder::LocalEncoder,
    entropy::EntropyModel, error::Result, global::GlobalTransformer,
};

/// What the walk asks of each parameter.
pub(super) trait Visitor<B: Backend> {
    /// A linear layer's weight, named `{name}.weight` there.
    fn projection(&mut self, name: &str, weight: &mut Param<Tensor<B, 2>>) -> Result<()>;
    /// A fused `[d, 3·w]` query-key-value weight; `names` are the three torch projections.
    fn qkv(&mut self, names: [&str; 3], weight: &mut Param<Tensor<B, 2>>) -> Result<()>;
    /// An embedding table, the same layout on both sides.
    fn table(&mut self, name: &str, weight: &mut Param<Tensor<B, 2>>) -> Result<()>;
    /// A norm gain.
    fn vector(&mut self, name: &str, gain: &mut Param<Tensor<B, 1>>) -> Result<()>;
}

fn linear<B: Backend>(v: &mut impl Visitor<B>, name: &str, linear: &mut Linear<B>) -> Result<()> {
    v.projection(name, &mut linear.weight)
}

fn norm<B: Backend>(v: &mut impl Visitor<B>, name: &str, norm: &mut RmsNorm<B>) -> Result<()> {
    v.vector(&format!("{name}.weight"), &mut norm.gamma)
}

fn ffn<B: Backend>(v: &mut impl Visitor<B>, name: &str, ffn: &mut SwiGlu<B>) -> Result<()> {
    linear(v, &format!("{name}.gate_proj"), &mut ffn.gate)?;
    linear(v, &format!("{name}.up_proj"), &mut ffn.up)?;
    linear(v, &format!("{name}.down_proj"), &mut ffn.down)
}

fn block<B: Backend>(
    v: &mut impl Visitor<B>,
    name: &str,
    block: &mut TransformerBlock<B>,
) -> Result<()> {
    let [q, k, val] = ["q_proj", "k_proj", "v_proj"].map(|p| format!("{name}.self_attn.{p}"));
    v.qkv([&q, &k, &val], &mut block.attention.qkv.weight)?;
    linear(
        v,
        &format!("{name}.self_attn.o_proj"),
        &mut block.attention.output,
    )?;
    norm(
        v,
        &format!("{name}.input_layernorm"),
        &mut block.attention_norm,
    )?;
    norm(
        v,
        &format!("{name}.post_attention_layernorm"),
        &mut block.ffn_norm,
    )?;
    ffn(v, &format!("{name}.mlp"), &mut block.ffn)
}

fn blocks<B: Backend>(
    v: &mut impl Visitor<B>,
    prefix: &str,
    blocks: &mut [TransformerBlock<B>],
) -> Result<()> {
    for (i, b) in blocks.iter_mut().enumerate() {
        block(v, &format!("{prefix}.layers.{i}"), b)?;
    }
    Ok(())
}

fn cross<B: Backend>(
    v: &mut impl Visitor<B>,
    name: &str,
    cross: &mut CrossAttention<B>,
) -> Result<()> {
    linear(v, &format!("{name}.q_proj"), &mut cross.wq)?;
    linear(v, &format!("{name}.k_proj"), &mut cross.wk)?;
    linear(v, &format!("{name}.v_proj"), &mut cross.wv)?;
    linear(v, &format!("{name}.o_proj"), &mut cross.wo)?;
    norm(v, &format!("{name}.q_norm"), &mut cross.query_norm)?;
    norm(v, &format!("{name}.k_norm"), &mut cross.kv_norm)
}

fn byte_embedding<B: Backend>(v: &mut impl Visitor<B>, e: &mut ByteEmbedding<B>) -> Result<()> {
    v.table(
        "model.local_encoder.embed_tokens.weight",
        &mut e.bytes.weight,
    )?;
    match &mut e.ngrams {
        Some(table) => v.table("model.encoder_hash_tok_embedding.weight", &mut table.weight),
        None => Ok(()),
    }
}

fn encoder<B: Backend>(v: &mut impl Visitor<B>, e: &mut LocalEncoder<B>) -> Result<()> {
    let p = "model.local_encoder";
    blocks(v, p, &mut e.blocks)?;
    linear(
        v,
        &format!("{p}.patch_embedding_projection"),
        &mut e.patch_projection,
    )?;
    match &mut e.cross_attention {
        Some(c) => cross(v, &format!("{p}.cross_attn_layers.0"), c),
        None => Ok(()),
    }
}

fn global<B: Backend>(v: &mut impl Visitor<B>, g: &mut GlobalTransformer<B>) -> Result<()> {
    let p = "model.global_transformer";
    if let Some(projection) = &mut g.input_projection {
        linear(v, &format!("{p}.token_embedding_projection"), projection)?;
    }
    blocks(v, p, &mut g.blocks)
}

fn decoder<B: Backend>(v: &mut impl Visitor<B>, d: &mut LocalDecoder<B>) -> Result<()> {
    let p = "model.local_decoder";
    linear(
        v,
        &format!("{p}.patch_embedding_projection"),
        &mut d.patch_projection,
    )?;
    for (i, c) in d.cross_attentions.iter_mut().enumerate() {
        cross(v, &format!("{p}.cross_attn_layers.{i}"), c)?;
    }
    blocks(v, p, &mut d.blocks)?;
    norm(v, &format!("{p}.norm"), &mut d.norm)
}

/// Every BLT parameter except the output head, which [`HEAD`] names.
pub(super) fn blt_body<B: Backend>(v: &mut impl Visitor<B>, model: &mut Blt<B>) -> Result<()> {
    byte_embedding(v, &mut model.embedding)?;
    encoder(v, &mut model.encoder)?;
    global(v, &mut model.global)?;
    decoder(v, &mut model.decoder)
}

/// The output head's name there (a projection).
pub(super) const HEAD: &str = "lm_head";

/// Every entropy-model parameter, under transformers' `model.patcher`.
pub(super) fn patcher<B: Backend>(v: &mut impl Visitor<B>, m: &mut EntropyModel<B>) -> Result<()> {
    let p = "model.patcher";
    v.table(&format!("{p}.embed_tokens.weight"), &mut m.embedding.weight)?;
    blocks(v, p, &mut m.blocks)?;
    norm(v, &format!("{p}.norm"), &mut m.norm)?;
    linear(v, &format!("{p}.lm_head"), &mut m.head)
}
