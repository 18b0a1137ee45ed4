//! A run as a grader with only Python sees it: the run's `best.pt` opens with the real
//! `torch.load(…, weights_only=True)`, loads with `strict=True` into the `nn.Module` that
//! `deploy::pytorch` writes, and that module reruns the test set with the run's logits
//! (≤ 1e-5) and its test accuracy.
mod common;

use common::{faint_dataset, faint_run, venv_python};
use helpers::deploy::pytorch::{export_definition, Provenance};
use helpers::weights::torch_save::write_state_dict;
use std::process::Command;

const RERUN: &str = r#"
import sys, torch
sys.path.insert(0, sys.argv[1])
import model
net = model.load(sys.argv[2])
io = torch.load(sys.argv[3], weights_only=True)
with torch.no_grad():
    logits = net(model.preprocess(io["images"]))
diff = (logits - io["logits"]).abs().max().item()
accuracy = (logits.argmax(1) == io["labels"]).double().mean().item()
print(f"{diff:.3e} {accuracy:.6f} {len(model.CLASSES)}")
"#;

#[test]
fn best_pt_reloads_into_the_exported_definition_and_reruns_the_test_set() {
    let dir = tempfile::tempdir().unwrap();
    let data = faint_dataset();
    let run = faint_run(dir.path(), &data);
    let best = run.run.pytorch_checkpoint();
    assert!(best.is_file(), "a finished run writes {}", best.display());

    let module = dir.path().join("model.py");
    let hash = run.config.hash();
    let about = Provenance {
        run: "faint",
        config_hash: &hash,
        classes: &data.classes,
        norm: &run.loaders.norm,
    };
    export_definition(&run.model, &about, &module).unwrap();

    let images = data.test.images.shallow_clone();
    let logits = tch::no_grad(|| {
        run.model
            .forward_t(&run.loaders.norm.normalize(&images), false)
    });
    let io = dir.path().join("io.pt");
    write_state_dict(
        &io,
        &[
            ("images".into(), images),
            ("logits".into(), logits),
            ("labels".into(), data.test.labels.shallow_clone()),
        ],
    )
    .unwrap();

    let out = Command::new(venv_python())
        .arg("-c")
        .arg(RERUN)
        .arg(dir.path())
        .arg(&best)
        .arg(&io)
        .output()
        .expect("the setup venv's python (run scripts/setup)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fields: Vec<f64> = text
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    eprintln!(
        "PyTorch rerun: max |logit difference| {:.1e}, test accuracy {}",
        fields[0], fields[1]
    );
    assert!(fields[0] <= 1e-5, "max |logit difference| {}", fields[0]);
    assert!(
        (fields[1] - run.test.accuracy).abs() < 1e-9,
        "PyTorch test accuracy {} vs the run's {}",
        fields[1],
        run.test.accuracy
    );
    assert_eq!(fields[2] as usize, data.classes.len());
}
