//! `cargo xtask bench --peer PYTHON`: the Hugging Face BLT in PyTorch at the bench shapes, timed
//! in the same invocation as our bench, and the ratios between the two.

use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cmd::workspace_root;

/// Runs `scripts/hf_decode_1b.py` (transformers' cached `generate` at BLT-1B's shapes, random
/// weights, `rows` per n-gram table) and returns its JSON line.
pub fn run_peer_1b(python: &str, rows: usize, new_bytes: usize) -> Result<Value> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    eprintln!("xtask bench: timing transformers' BLT at BLT-1B's shapes ({python})");
    let output = Command::new(python)
        .arg("scripts/hf_decode_1b.py")
        .args([
            "--ngram-rows",
            &rows.to_string(),
            "--new",
            &new_bytes.to_string(),
        ])
        .args(["--threads", &threads.to_string()])
        .current_dir(workspace_root())
        .output()
        .with_context(|| format!("starting `{python} scripts/hf_decode_1b.py`"))?;
    if !output.status.success() {
        bail!(
            "the BLT-1B peer failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .context("the BLT-1B peer printed no JSON")
}

/// Runs the peer script and returns its lines of interest: `train`, `infer` and the cached
/// `generate` (64-byte prompt, 128 new bytes, batch 1, as in our first generation case).
pub fn run_peer(python: &str, script: &str, generation: bool) -> Result<Value> {
    let tasks = if generation {
        "train,infer,generate"
    } else {
        "train,infer"
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    eprintln!("xtask bench: timing the Hugging Face BLT ({python} {script}, tasks {tasks})");
    let output = Command::new(python)
        .args([script, "--peers", "hf", "--tasks", tasks])
        .args([
            "--threads",
            &threads.to_string(),
            "--hf-nocache-generate",
            "0",
        ])
        .current_dir(workspace_root())
        .output()
        .with_context(|| format!("starting the peer benchmark `{python} {script}`"))?;
    if !output.status.success() {
        bail!(
            "the peer benchmark failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let find = |measure: &str, variant: Option<&str>| {
        lines
            .iter()
            .find(|l| {
                l["measure"] == measure
                    && variant.is_none_or(|v| l["variant"] == v)
                    && l["bytes_per_s"].is_number()
            })
            .cloned()
    };
    let train = find("train", None).context("the peer printed no train figure")?;
    let infer = find("infer", None).context("the peer printed no infer figure")?;
    let generate = find("generate", Some("hf_generate_kv_cache"));
    let env = lines.iter().find(|l| l["measure"] == "env").cloned();
    Ok(json!({
        "name": "Hugging Face transformers BltForCausalLM (PyTorch, CPU)",
        "env": env,
        "train": train,
        "infer": infer,
        "generate": generate,
    }))
}

/// `ours / theirs` for training, forward and (when both have it) batch-1 generation: by the
/// path `blt-cli generate` takes on a CPU (the host decoder with `bf16` weights), by the host
/// decoder in `f32`, and by Burn's cached path.
pub fn ratios(ours: &Value, peer: &Value) -> Value {
    let ratio = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) if b > 0.0 => json!(a / b),
        _ => Value::Null,
    };
    json!({
        "training": ratio(&ours["training"]["bytes_per_s"], &peer["train"]["bytes_per_s"]),
        "forward": ratio(&ours["forward"]["bytes_per_s"], &peer["infer"]["bytes_per_s"]),
        "generation": ratio(
            &ours["generation"]["cases"][0]["host_bf16_bytes_per_s"],
            &peer["generate"]["bytes_per_s"],
        ),
        "generation_int8": ratio(
            &ours["generation"]["cases"][0]["host_int8_bytes_per_s"],
            &peer["generate"]["bytes_per_s"],
        ),
        "generation_f32": ratio(
            &ours["generation"]["cases"][0]["host_bytes_per_s"],
            &peer["generate"]["bytes_per_s"],
        ),
        "generation_cached": ratio(
            &ours["generation"]["cases"][0]["incremental_bytes_per_s"],
            &peer["generate"]["bytes_per_s"],
        ),
    })
}
