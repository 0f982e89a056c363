//! Block configurations shared by the local, global and entropy models.

use blt_core::TransformerBlockConfig;

use crate::config::BltConfig;

/// Configs of `layers` local (byte-level) blocks: width `hidden_size`, SwiGLU hidden size
/// `ffn`, windowed attention.
pub fn local_block_configs(
    config: &BltConfig,
    layers: usize,
    ffn: usize,
) -> Vec<TransformerBlockConfig> {
    (0..layers)
        .map(|layer| {
            TransformerBlockConfig::new(config.hidden_size, config.num_heads)
                .with_ffn_hidden_size(Some(ffn))
                .with_attention(config.attention)
                .with_rope_theta(config.rope_theta)
                .with_max_seq_len(config.max_position_embeddings)
                .with_attention_dropout(config.attention_dropout)
                .with_resid_dropout(config.resid_dropout)
                .with_norm_eps(config.norm_eps)
                .with_layer_index(layer)
        })
        .collect()
}

/// Configs of the global blocks: width `global_hidden_size`, causal over patches.
pub fn global_block_configs(config: &BltConfig) -> Vec<TransformerBlockConfig> {
    (0..config.global_layers)
        .map(|layer| {
            TransformerBlockConfig::new(config.global_hidden_size, config.global_num_heads)
                .with_ffn_hidden_size(Some(config.global_intermediate_size))
                .with_attention(config.attention)
                .with_rope_theta(config.rope_theta)
                // At most one patch per byte, plus the BOS patch.
                .with_max_seq_len(config.max_position_embeddings + 1)
                .with_attention_dropout(config.attention_dropout)
                .with_resid_dropout(config.resid_dropout)
                .with_norm_eps(config.norm_eps)
                .with_layer_index(layer)
        })
        .collect()
}
