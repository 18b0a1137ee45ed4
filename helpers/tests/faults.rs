//! Fault injection on `lab train` (the real binary, on an image folder the test writes):
//! SIGKILL at random times, SIGKILL in the middle of a checkpoint, history and finish
//! write (the moment its temp file appears), a full disk (a file-size limit) and a
//! folder that cannot be written. After each fault the run directory must parse and be
//! consistent (the order of `helpers::run`'s contract), and `--resume` must end bit for
//! bit where an unbroken run ends. Each test prints how many faults it injected.
mod common;

use common::{lock, unlock};
use helpers::config::RunConfig;
use helpers::data::Split;
use helpers::io::tensors::read_tensors;
use helpers::rng::Rng;
use helpers::run::{RunDir, Status};
use helpers::train::callbacks::read_loop_state;
use helpers::train::History;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const RUN: &str = "faulty";
const CLASSES: usize = 4;

/// An image folder (`train/` and `test/`, one sub-folder per class) of 8×8 grey PNGs: class
/// c lights quadrant c over noise — learnable in a few epochs of a tiny CNN.
fn write_image_folder(dir: &Path) {
    let mut rng = Rng::new(3, 5);
    for (split, per_class) in [("train", 160), ("test", 30)] {
        for class in 0..CLASSES {
            let folder = dir.join(split).join(format!("class_{class}"));
            std::fs::create_dir_all(&folder).unwrap();
            for i in 0..per_class {
                let (qy, qx) = (class as u32 / 2 * 4, class as u32 % 2 * 4);
                let img = image::GrayImage::from_fn(8, 8, |x, y| {
                    let lit = (qy..qy + 4).contains(&y) && (qx..qx + 4).contains(&x);
                    image::Luma([if lit { 200 } else { rng.below(80) as u8 }])
                });
                img.save(folder.join(format!("{i:03}.png"))).unwrap();
            }
        }
    }
}

fn config_text(data: &Path) -> String {
    format!(
        r#"name = "{RUN}"
seed = 11
threads = 2
[data]
dataset = "image_folder"
dir = "{}"
image_size = 8
channels = 1
val_fraction = 0.2
[data.augment]
crop_padding = 1
horizontal_flip = false
[model]
arch = "cnn"
widths = [8, 16]
depths = [1, 1]
head = "flatten"
[train]
epochs = 8
batch_size = 16
eval_batch_size = 64
lr = 0.01
precision = "fp32"
"#,
        data.display()
    )
}

/// The data, its config and a folder for run roots, alive for one test.
struct Bench {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        write_image_folder(&dir.path().join("data"));
        let config = dir.path().join("faulty.toml");
        std::fs::write(&config, config_text(&dir.path().join("data"))).unwrap();
        Bench { dir, config }
    }

    fn root(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `lab train` of the config into `root` (resuming what is there).
    fn train(&self, root: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
        cmd.args(["train", "--config"])
            .arg(&self.config)
            .arg("--root")
            .arg(root)
            .arg("--resume")
            .env_remove("RUST_BACKTRACE")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// Trains to the end; panics with its output when it fails.
    fn finish(&self, root: &Path) {
        let out = self.train(root).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Where a kill lands.
#[derive(Debug, Clone, Copy)]
enum Kill {
    After(Duration),
    /// When the temp file of an atomic write of this file first appears: mid-write.
    Writing(&'static str),
}

/// Runs `cmd`, SIGKILLs it at `kill`; false when it finished first.
fn run_and_kill(mut cmd: Command, run: &Path, kill: Kill) -> bool {
    std::fs::create_dir_all(run).unwrap();
    // Watched before the start, so no creation is missed.
    let watch = CreationWatch::new(run);
    let mut child = cmd.stderr(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let due = match kill {
            Kill::After(t) => started.elapsed() >= t,
            Kill::Writing(file) => watch.created(&format!(".{file}.tmp")),
        };
        if due {
            return killed(&mut child);
        }
        if let Kill::After(_) = kill {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn killed(child: &mut Child) -> bool {
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    running
}

/// Files created in one folder, as inotify reports them: a temp file lives for about a
/// millisecond, too short to find by listing the folder.
struct CreationWatch {
    fd: i32,
    dir: std::ffi::CString,
    /// False after the folder was removed (a resume that starts afresh wipes it) until
    /// it exists again and is watched anew.
    watching: std::cell::Cell<bool>,
}

impl CreationWatch {
    fn new(dir: &Path) -> CreationWatch {
        use std::os::unix::ffi::OsStrExt;
        let dir = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: a plain syscall; the descriptor is owned by this struct.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        assert!(fd >= 0, "inotify_init1");
        let watch = CreationWatch {
            fd,
            dir,
            watching: std::cell::Cell::new(false),
        };
        assert!(watch.rewatch(), "inotify_add_watch");
        watch
    }

    fn rewatch(&self) -> bool {
        // SAFETY: `dir` is a valid C string for the duration of the call.
        let wd = unsafe { libc::inotify_add_watch(self.fd, self.dir.as_ptr(), libc::IN_CREATE) };
        self.watching.set(wd >= 0);
        wd >= 0
    }

    /// Waits up to 5 ms for creations; true when one's name starts with `prefix`.
    fn created(&self, prefix: &str) -> bool {
        if !self.watching.get() && !self.rewatch() {
            return false;
        }
        let mut poll = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, then a read into a buffer of the size given.
        if unsafe { libc::poll(&mut poll, 1, 5) } <= 0 {
            return false;
        }
        let mut buf = [0u8; 4096];
        let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
        let header = std::mem::size_of::<libc::inotify_event>();
        let (mut at, mut found) = (0, false);
        while n > 0 && at + header <= n as usize {
            let field = |i: usize| u32::from_ne_bytes(buf[at + i..at + i + 4].try_into().unwrap());
            let (mask, len) = (field(4), field(12) as usize);
            if mask & libc::IN_IGNORED != 0 {
                self.watching.set(false);
            }
            let name = String::from_utf8_lossy(&buf[at + header..at + header + len]);
            found |= name.trim_end_matches('\0').starts_with(prefix);
            at += header + len;
        }
        found
    }
}

impl Drop for CreationWatch {
    fn drop(&mut self) {
        // SAFETY: closes the descriptor opened in `new`, once.
        unsafe { libc::close(self.fd) };
    }
}

/// Every file of the run parses, and the files agree as the write order allows: the last
/// checkpoint is at most one epoch ahead of `meta.json`, `history.csv` between the two.
fn assert_consistent(run: &Path, after: &str) {
    let dir = RunDir::at(run);
    if !dir.file("config.toml").is_file() {
        return;
    }
    RunConfig::from_toml_file(dir.file("config.toml")).unwrap();
    let split = dir.file("split.json");
    if split.is_file() {
        Split::load(&split).unwrap_or_else(|e| panic!("{after}: {e}"));
    }
    let meta = dir.file("meta.json").is_file().then(|| dir.meta().unwrap());
    let ckpt = dir
        .last_checkpoint()
        .is_file()
        .then(|| read_loop_state(&dir.last_checkpoint()).unwrap());
    if dir.best_checkpoint().is_file() {
        read_tensors(&dir.best_checkpoint()).unwrap_or_else(|e| panic!("{after}: {e}"));
    }
    let rows = dir.file("history.csv").is_file().then(|| {
        History::load_csv(&dir.file("history.csv"))
            .unwrap()
            .epochs
            .len()
    });
    let (Some(meta), Some(ckpt)) = (meta, ckpt) else {
        return;
    };
    let (m, c) = (meta.epochs_done, ckpt.epochs_done);
    assert!(
        m <= c && c <= m + 1,
        "{after}: meta {m} epochs, checkpoint {c}"
    );
    let rows = rows.expect("history.csv with meta.json");
    assert!(
        m <= rows && rows <= c,
        "{after}: history {rows} rows, meta {m}, checkpoint {c}"
    );
    if meta.status == Status::Finished {
        dir.metrics()
            .unwrap_or_else(|e| panic!("{after}: finished without metrics: {e}"));
    }
}

/// The finished run in `root` ends where the unbroken one in `reference` ends: the same
/// best weights and test metrics byte for byte, the same per-epoch scores, no temp file.
fn assert_same_end(root: &Path, reference: &Path) {
    let (a, b) = (RunDir::at(root.join(RUN)), RunDir::at(reference.join(RUN)));
    assert!(a.is_finished());
    for f in ["model_checkpoint.safetensors", "metrics.json", "best.pt"] {
        let same = std::fs::read(a.file(f)).unwrap() == std::fs::read(b.file(f)).unwrap();
        assert!(
            same,
            "{f} of {} differs from the unbroken run's",
            a.path.display()
        );
    }
    let scores = |d: &RunDir| -> Vec<(f64, f64, f64)> {
        let h = d.history().unwrap();
        h.epochs
            .iter()
            .map(|e| (e.train_loss, e.val_loss, e.val_accuracy))
            .collect()
    };
    assert_eq!(scores(&a), scores(&b));
    let temps: Vec<_> = std::fs::read_dir(&a.path)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(temps.is_empty(), "temp files left: {temps:?}");
}

/// One test at a time: the random kills are timed against the unbroken run's duration,
/// which another test training beside it would stretch.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The unbroken run and how long it takes.
fn reference(bench: &Bench) -> (PathBuf, Duration) {
    let root = bench.root("reference");
    let started = Instant::now();
    bench.finish(&root);
    (root, started.elapsed())
}

#[test]
fn kills_at_random_times_and_in_every_kind_of_write_resume_bit_for_bit() {
    let _guard = serial();
    let bench = Bench::new();
    let (reference, took) = reference(&bench);
    let mut rng = Rng::new(2026, 1);
    let mut plans: Vec<Vec<Kill>> = vec![(0..8)
        .map(|_| Kill::After(took.mul_f64(0.6 * rng.uniform())))
        .collect()];
    plans.push(vec![
        Kill::Writing("last_checkpoint.safetensors"),
        Kill::Writing("model_checkpoint.safetensors"),
        Kill::Writing("history.csv"),
        Kill::Writing("meta.json"),
        Kill::Writing("last_checkpoint.safetensors"),
        Kill::Writing("history.csv"),
        Kill::Writing("metrics.json"),
        Kill::Writing("best.pt"),
    ]);
    let (mut injected, mut planned) = (0, 0);
    for (i, plan) in plans.iter().enumerate() {
        let root = bench.root(&format!("broken{i}"));
        for (k, &kill) in plan.iter().enumerate() {
            planned += 1;
            let landed = run_and_kill(bench.train(&root), &root.join(RUN), kill);
            eprintln!("plan {i}, fault {k} ({kill:?}): landed {landed}");
            injected += landed as usize;
            assert_consistent(&root.join(RUN), &format!("plan {i}, fault {k} ({kill:?})"));
        }
        bench.finish(&root);
        assert_same_end(&root, &reference);
    }
    println!(
        "{injected} of {planned} planned kills landed while lab ran (the others found it finished); every run resumed bit for bit"
    );
    assert!(injected >= 10, "only {injected} kills landed");
}

#[test]
fn a_full_disk_and_an_unwritable_folder_fail_clearly_and_lose_nothing() {
    let _guard = serial();
    let bench = Bench::new();
    let (reference, _) = reference(&bench);
    let root = bench.root("limited");
    // A file-size limit below the last checkpoint's size: the first epoch's checkpoint
    // write fails as on a full disk (EFBIG, SIGXFSZ ignored).
    let ckpt_kib = std::fs::metadata(RunDir::at(reference.join(RUN)).last_checkpoint())
        .unwrap()
        .len()
        / 1024;
    let mut limited = Command::new("bash");
    limited
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {}; exec \"$@\"",
            ckpt_kib / 2
        ))
        .arg("lab");
    let train = bench.train(&root);
    limited.arg(train.get_program()).args(train.get_args());
    let out = limited.output().unwrap();
    let text = stderr(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("free disk space") && !text.contains("os error"),
        "{text}"
    );
    assert_consistent(&root.join(RUN), "disk full");
    // One epoch, then the run folder made unwritable.
    run_and_kill(
        bench.train(&root),
        &root.join(RUN),
        Kill::Writing("meta.json"),
    );
    let run = root.join(RUN);
    let before = snapshot(&run);
    let locked = lock(&run);
    let out = bench.train(&root).output().unwrap();
    unlock(&run, locked);
    let text = stderr(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("give this user access"), "{text}");
    assert_eq!(snapshot(&run), before, "nothing changed in the locked run");
    bench.finish(&root);
    assert_same_end(&root, &reference);
    println!("2 faults (a full disk, an unwritable folder): both failed with a message and resumed bit for bit");
}

/// Every top-level file of `run` with its bytes.
fn snapshot(run: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(run)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}
