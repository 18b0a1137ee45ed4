//! `lab bench-tokenize`: tokenisation throughput (texts/s) of the crate's word tokenizer
//! against Hugging Face `tokenizers` (scripts/bench_tokenizers.py, same vocabulary, same
//! splitting rules, same padding) on the Rotten Tomatoes snippets, in one run, with a
//! check that both sides give the same ids.
use anyhow::{Context, Result};
use clap::Args;
use helpers::data::tabular::preprocess::median;
use helpers::data::text::{grouped_split, rotten_tomatoes, Vocabulary};
use helpers::io::venv::run_python_json;
use helpers::tasks::text::TokenConfig;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct BenchTokenizeArgs {
    /// Passes over the snippets per timed round.
    #[arg(long, default_value_t = 10)]
    repeat: usize,
    /// Timed rounds per side (medians are compared).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// The Rotten Tomatoes file.
    #[arg(long, default_value = rotten_tomatoes::DEFAULT_PATH)]
    data: PathBuf,
    /// The repository's scripts folder.
    #[arg(long, default_value = "scripts")]
    scripts: PathBuf,
}

#[derive(Deserialize)]
struct Reference {
    tokenizers: String,
    parallel_texts_per_s: f64,
    single_thread_texts_per_s: f64,
    ids: Vec<Vec<i64>>,
}

pub fn run(args: BenchTokenizeArgs) -> Result<()> {
    let set = rotten_tomatoes::load(&args.data)
        .with_context(|| format!("loading {}", args.data.display()))?;
    let split = grouped_split(&set, 0.1, 0.2, 0)?;
    let tokens = TokenConfig::default();
    let train = split.train.iter().map(|&r| set.texts[r].as_str());
    let vocab = Vocabulary::fit(train, tokens.min_freq, tokens.max_vocab);
    let texts: Vec<&str> = set.texts.iter().map(String::as_str).collect();
    let rates: Vec<f64> = (0..args.rounds.max(1))
        .map(|_| {
            let started = Instant::now();
            for _ in 0..args.repeat {
                std::hint::black_box(vocab.encode(texts.iter().copied(), tokens.max_length));
            }
            (texts.len() * args.repeat) as f64 / started.elapsed().as_secs_f64()
        })
        .collect();
    // The same median as the Python side's `statistics.median`.
    let rust = median(&rates);
    let reference = python_reference(&args, &vocab, &texts, tokens.max_length)?;
    let ours = vocab.encode(texts.iter().copied(), tokens.max_length).ids;
    let same = reference
        .ids
        .iter()
        .zip(ours.chunks(tokens.max_length))
        .filter(|(a, b)| a.as_slice() == *b)
        .count();
    println!(
        "{} snippets × {} per round, vocabulary {} (train split, min_freq {}), max_length {}",
        texts.len(),
        args.repeat,
        vocab.len(),
        tokens.min_freq,
        tokens.max_length
    );
    println!("lab tokenize texts/s {rust:.0} (1 thread)");
    println!(
        "tokenizers {} texts/s {:.0} (encode_batch, parallel), {:.0} (1 thread)",
        reference.tokenizers, reference.parallel_texts_per_s, reference.single_thread_texts_per_s
    );
    println!(
        "ids identical on {same}/{} snippets; ratio lab/tokenizers (1 thread) {:.2}x",
        texts.len(),
        rust / reference.single_thread_texts_per_s
    );
    Ok(())
}

fn python_reference(
    args: &BenchTokenizeArgs,
    vocab: &Vocabulary,
    texts: &[&str],
    max_length: usize,
) -> Result<Reference> {
    let spec = std::env::temp_dir().join(format!("lab-bench-tokenize-{}.json", std::process::id()));
    let body = serde_json::json!({
        "words": vocab.words, "texts": texts, "repeat": args.repeat,
        "rounds": args.rounds.max(1), "max_length": max_length,
    });
    std::fs::write(&spec, serde_json::to_vec(&body)?)
        .with_context(|| format!("writing {}", spec.display()))?;
    let reference = run_python_json(&args.scripts.join("bench_tokenizers.py"), [&spec]);
    let _ = std::fs::remove_file(&spec);
    Ok(reference?)
}
