//! Hot swap: a thread watches the runs root's `deployed.json` (which the retraining gate
//! rewrites atomically when it promotes a candidate); when its content changes it loads
//! the run it names and replaces the served model in one step. The batch in flight keeps
//! its `Arc` to the old model and finishes on it; the next batch runs on the new one.
//! A pointer that cannot be loaded leaves the old model serving and is reported.
use super::model::ServedModel;
use super::Shared;
use crate::monitor::retrain::DeployedPointer;
use crate::Result;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Loads a run directory into a model to serve (the server's own loader, or a test's).
pub type Loader = Arc<dyn Fn(&Path) -> Result<ServedModel> + Send + Sync>;

/// How often `deployed.json` is read.
pub const POLL: Duration = Duration::from_millis(250);

/// Watches `pointer` (a `deployed.json`) until the server state is dropped.
pub(super) fn watch(pointer: PathBuf, loader: Loader, shared: Weak<Shared>) -> std::io::Result<()> {
    let mut seen = std::fs::read(&pointer).ok();
    std::thread::Builder::new()
        .name("lab-serve-swap".into())
        .spawn(move || loop {
            std::thread::sleep(POLL);
            let Some(shared) = shared.upgrade() else {
                break;
            };
            let now = std::fs::read(&pointer).ok();
            if now.is_none() || now == seen {
                continue;
            }
            seen = now.clone();
            let outcome = now
                .as_deref()
                .map(|bytes| swap_to(&shared, &pointer, bytes, &loader))
                .unwrap_or(Ok(()));
            if let Err(e) = outcome {
                shared.notice(&format!(
                    "{} changed but was not loaded, still serving {}: {e}",
                    pointer.display(),
                    shared.model().version
                ));
                *shared.swap_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
            }
        })
        .map(|_| ())
}

fn swap_to(shared: &Shared, pointer: &Path, bytes: &[u8], loader: &Loader) -> Result<()> {
    let deployed: DeployedPointer = serde_json::from_slice(bytes)
        .map_err(|e| crate::Error::data(pointer, format!("not a deployment pointer: {e}")))?;
    let run = resolve(&deployed.run, pointer);
    if shared.model().run == run {
        return Ok(());
    }
    let next = Arc::new(loader(&run)?);
    let old = shared.replace(next.clone());
    shared.metrics.swap();
    *shared.swap_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    shared.notice(&format!(
        "swapped {} → {} ({}: {})",
        old.version,
        next.version,
        run.display(),
        next.run_state
    ));
    Ok(())
}

/// The pointer's run as written, or (when that does not exist from here) the folder of
/// that name beside the pointer.
fn resolve(run: &Path, pointer: &Path) -> PathBuf {
    if run.exists() {
        return run.to_path_buf();
    }
    match (pointer.parent(), run.file_name()) {
        (Some(root), Some(name)) => root.join(name),
        _ => run.to_path_buf(),
    }
}
