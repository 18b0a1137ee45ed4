//! A sweep on a real Slurm cluster: `scripts/slurm_cluster` starts munged, slurmctld and
//! slurmd on this machine (Debian's packages, `scripts/setup slurm`); `lab grid --slurm
//! --submit` submits a 4-point Fashion-MNIST sweep as an array job, one point is cancelled
//! with `scancel` mid-run, `lab sweep-status` reports it failed, a resubmission runs only
//! that point (resumed from its checkpoint), and all four end with the metrics of the
//! same sweep run locally. The daemons are stopped when the test ends, pass or fail.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The cluster's daemons, stopped on drop.
struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(repo().join("scripts/slurm_cluster"))
            .args(["start", dir.path().to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the Slurm cluster did not start (scripts/setup slurm installs it): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Cluster { dir }
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        Command::new(tool)
            .args(args)
            .env("SLURM_CONF", self.conf())
            .output()
            .unwrap()
    }

    fn lab(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_lab"))
            .args(args)
            .env("SLURM_CONF", self.conf())
            .env_remove("LAB_PROFILE")
            .env_remove("LAB_RUNS")
            .output()
            .unwrap()
    }

    /// Waits until job `job` has left the queue.
    fn wait_done(&self, job: &str) {
        let started = Instant::now();
        loop {
            let out = self.run("squeue", &["-h", "-r", "-j", job, "-o", "%K %T"]);
            if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "job {job} still queued after 5 min"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/slurm_cluster"))
            .args(["stop", self.dir.path().to_str().unwrap()])
            .output();
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Four points (lr × weight decay) of a small CNN, one libtorch thread and one CPU per
/// array task, 5 short epochs.
fn sweep_config(dir: &Path) -> PathBuf {
    let data = repo().join("data/fashion_mnist");
    let text = format!(
        "name = \"cluster\"\nseed = 3\nthreads = 1\n\
         [data]\ndir = \"{}\"\ntrain_limit = 3000\ntest_limit = 500\n\
         [model]\nwidths = [8, 16]\ndepths = [1, 1]\n\
         [train]\nepochs = 5\nbatch_size = 64\n\
         [grid]\n\"train.lr\" = [1e-3, 3e-3]\n\"train.weight_decay\" = [0.0, 5e-4]\n\
         [slurm]\ncpus = 1\n",
        data.display()
    );
    let path = dir.join("cluster.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn job_id(out: &Output) -> String {
    let t = text(out);
    assert!(out.status.success(), "{t}");
    t.split("submitted job ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("a job id")
        .to_string()
}

fn test_accuracy(run: &Path) -> f64 {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap();
    meta["test_accuracy"].as_f64().unwrap()
}

#[test]
fn a_sweep_on_slurm_survives_a_cancelled_point_and_matches_the_local_sweep() {
    let cluster = Cluster::start();
    let work = tempfile::tempdir().unwrap();
    let config = sweep_config(work.path());
    let (cfg, root, local) = (
        config.to_str().unwrap(),
        work.path().join("cluster_runs"),
        work.path().join("local_runs"),
    );
    let root_s = root.to_str().unwrap();

    let plain = cluster.lab(&["grid", "--config", cfg, "--root", root_s, "--slurm"]);
    assert!(
        text(&plain).contains("#SBATCH --array=0-3")
            && text(&plain).contains("#SBATCH --cpus-per-task=1")
            && text(&plain).contains("--resume"),
        "{}",
        text(&plain)
    );
    let bad = cluster.lab(&[
        "grid",
        "--config",
        cfg,
        "--root",
        root_s,
        "--slurm",
        "--submit",
        "--partition",
        "nope",
    ]);
    assert!(
        !bad.status.success() && text(&bad).contains("`nope` is not a partition"),
        "{}",
        text(&bad)
    );

    let job = job_id(&cluster.lab(&[
        "grid", "--config", cfg, "--root", root_s, "--slurm", "--submit",
    ]));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join(".slurm/cluster.json")).unwrap())
            .unwrap();
    let tasks: Vec<String> = manifest["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    // Cancel the first point seen with a checkpoint while it still trains.
    let started = Instant::now();
    let victim = loop {
        let hit = tasks.iter().position(|t| {
            root.join(t).join("last_checkpoint.safetensors").is_file()
                && !root.join(t).join("metrics.json").is_file()
        });
        if let Some(i) = hit {
            let out = cluster.run("scancel", &[&format!("{job}_{i}")]);
            assert!(out.status.success(), "{}", text(&out));
            break tasks[i].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no point reached a checkpoint"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    cluster.wait_done(&job);
    let status = cluster.lab(&["sweep-status", "--config", cfg, "--root", root_s]);
    let report = text(&status);
    assert!(
        !status.status.success(),
        "a failed point fails the status: {report}"
    );
    assert!(
        report.contains("3 of 4 finished, 1 failed")
            && report.contains(&format!("failed       {victim}"))
            && report.contains("Slurm: CANCELLED"),
        "{report}"
    );

    let again = cluster.lab(&[
        "grid", "--config", cfg, "--root", root_s, "--slurm", "--submit",
    ]);
    assert!(
        text(&again).contains("1 array tasks; 3 finished points left out"),
        "{}",
        text(&again)
    );
    cluster.wait_done(&job_id(&again));
    let status = cluster.lab(&["sweep-status", "--config", cfg, "--root", root_s]);
    assert!(
        status.status.success() && text(&status).contains("4 of 4 finished"),
        "{}",
        text(&status)
    );
    let done = cluster.lab(&[
        "grid", "--config", cfg, "--root", root_s, "--slurm", "--submit",
    ]);
    assert!(text(&done).contains("nothing to submit"), "{}", text(&done));

    // The cluster's points reported as `lab grid` reports them once they are finished.
    let reported = cluster.lab(&[
        "report",
        "--runs",
        root_s,
        "--sweep",
        cfg,
        "--out",
        work.path().join("report").to_str().unwrap(),
    ]);
    let table = text(&reported).split("wrote ").next().unwrap().to_string();
    let regrid = cluster.lab(&["grid", "--config", cfg, "--root", root_s]);
    assert!(
        reported.status.success() && table.contains("Grid search") && regrid.status.success(),
        "{}",
        text(&reported)
    );
    // `lab grid` replays each reused point's history first, then prints the same table.
    assert!(
        String::from_utf8_lossy(&regrid.stdout).ends_with(&table),
        "lab report --sweep:\n{table}\nlab grid:\n{}",
        text(&regrid)
    );
    assert!(work.path().join("report/index.html").is_file());

    // The same sweep here, one point after the other: the same metrics, point by point.
    let out = cluster.lab(&["grid", "--config", cfg, "--root", local.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    for t in &tasks {
        assert_eq!(
            test_accuracy(&root.join(t)),
            test_accuracy(&local.join(t)),
            "point {t}"
        );
    }
}
