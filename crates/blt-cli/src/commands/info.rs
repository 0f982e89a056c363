//! `blt-cli info`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use blt_model::{FlopsPerByte, ParameterCounts, load_model};
use burn::tensor::backend::Backend;
use serde_json::json;

use crate::{
    args::{GlobalArgs, InfoArgs},
    backend::{BackendTask, dispatch},
};

struct InfoTask {
    model: PathBuf,
    json: bool,
}

fn millions(n: usize) -> String {
    format!("{:.2} M", n as f64 / 1e6)
}

impl BackendTask for InfoTask {
    type Output = ();

    fn run<B: Backend>(self, device: B::Device, _name: &'static str) -> Result<()> {
        let loaded = load_model::<B>(&self.model, &device)
            .with_context(|| format!("loading model {}", self.model.display()))?;
        let config = &loaded.config;
        let counts = ParameterCounts::of(&loaded.model, loaded.entropy_model.as_ref());
        let summary: Option<serde_json::Value> =
            std::fs::read_to_string(self.model.join(blt_train::SUMMARY_FILE))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
        let patch_len = summary
            .as_ref()
            .and_then(|s| s["mean_patch_length"].as_f64())
            .unwrap_or(4.0);
        let flops =
            FlopsPerByte::estimate(config, patch_len, config.max_position_embeddings.min(1024));
        if self.json {
            let value = json!({
                "config": config,
                "parameters": counts,
                "flops_per_byte": { "mean_patch_length": patch_len, "forward": flops.forward(), "training": flops.training(), "components": flops },
                "summary": summary,
            });
            println!("{}", serde_json::to_string_pretty(&value)?);
            return Ok(());
        }
        println!("model       {}", self.model.display());
        println!(
            "shape       local {}×{} heads, {} enc / {} dec layers; global {}×{} heads, {} layers; k={}",
            config.hidden_size,
            config.num_heads,
            config.encoder_layers,
            config.decoder_layers,
            config.global_hidden_size,
            config.global_num_heads,
            config.global_layers,
            config.cross_attn_k
        );
        println!(
            "patching    {:?} (threshold {}, stride {}), pooling {:?}, attention {:?}",
            config.patching,
            config.entropy_threshold,
            config.patch_stride,
            config.pooling,
            config.attention
        );
        println!("parameters  embeddings {}", millions(counts.embeddings));
        println!("            encoder    {}", millions(counts.encoder));
        println!("            global     {}", millions(counts.global));
        println!("            decoder    {}", millions(counts.decoder));
        println!(
            "            total      {} ({} without embeddings)",
            millions(counts.total()),
            millions(counts.non_embedding())
        );
        println!("            entropy    {}", millions(counts.entropy_model));
        println!(
            "flops/byte  {:.3} MFLOP forward, {:.3} MFLOP training (mean patch length {:.2})",
            flops.forward() / 1e6,
            flops.training() / 1e6,
            patch_len
        );
        if let Some(s) = summary {
            println!(
                "training    {} steps in {:.0}s on {}",
                s["blt_stage"]["steps"],
                s["wall_seconds"].as_f64().unwrap_or(0.0),
                s["backend"]
            );
            if let Some(last) = s["blt_stage"]["epochs"].as_array().and_then(|e| e.last()) {
                println!(
                    "            valid loss {:.4} nats, {:.4} bits/byte",
                    last["valid_loss"].as_f64().unwrap_or(f64::NAN),
                    last["valid_bits_per_byte"].as_f64().unwrap_or(f64::NAN)
                );
            }
        }
        Ok(())
    }
}

/// Runs the command.
pub fn run(global: &GlobalArgs, args: InfoArgs) -> Result<()> {
    dispatch(
        &global.backend,
        InfoTask {
            model: args.model,
            json: args.json,
        },
    )
}
