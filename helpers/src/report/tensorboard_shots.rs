//! TensorBoard captures for a report that must show them: the real TensorBoard of the
//! setup venv serves the runs' event files on loopback, headless Chromium opens its
//! Scalars and HParams dashboards, and each view is saved as a PNG (`loss.png`,
//! `metric.png`, `lr.png`, `scalars.png`, `hparams.png`). TensorBoard is stopped when
//! the captures are done, or fail.
use crate::{Error, Result};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The folder of the runs root where LR range tests log (`lab lr-find`, the notebook).
pub const LR_FIND_RUN: &str = "lr_find";

/// One capture: its file name, the dashboard fragment and the window height.
struct View {
    file: &'static str,
    fragment: String,
    height: u32,
}

/// What to capture.
#[derive(Debug, Clone)]
pub struct ShotOptions {
    /// Only runs whose folder matches this regular expression ("" = every run).
    pub run_filter: String,
    /// The metric's tag prefix (`accuracy` for classification; `mae`, `map`, … for
    /// the other tracks).
    pub metric: String,
}

/// Captures the runs under `runs` into `out`; returns the PNGs written.
pub fn capture(runs: &Path, out: &Path, options: &ShotOptions) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let chromium = find_chromium()?;
    let server = TensorBoard::start(runs)?;
    // Raw values (smoothing 0; the setting lives in the fragment). "Ignore outliers"
    // lives in the browser's local storage and stays on: TensorBoard's default.
    let runs_query = format!(
        "&regexInput={}&_smoothingWeight=0",
        percent_encode(&options.run_filter)
    );
    let scalars = |tag: &str| format!("scalars&tagFilter={}{runs_query}", percent_encode(tag));
    let views = [
        View {
            file: "loss.png",
            fragment: scalars("^loss/"),
            height: 700,
        },
        View {
            file: "metric.png",
            fragment: scalars(&format!("^{}/", options.metric)),
            height: 700,
        },
        View {
            file: "lr.png",
            fragment: scalars("^lr$"),
            height: 700,
        },
        View {
            file: "scalars.png",
            fragment: format!("scalars{runs_query}"),
            height: 1800,
        },
        View {
            file: "hparams.png",
            fragment: "hparams".into(),
            height: 1000,
        },
    ];
    let mut views = Vec::from(views);
    if runs.join(LR_FIND_RUN).is_dir() {
        views.insert(
            3,
            View {
                file: "lr_find.png",
                fragment: scalars("^lr_find/"),
                height: 700,
            },
        );
    }
    let mut written = Vec::new();
    for view in views {
        let png = out.join(view.file);
        let url = format!("http://127.0.0.1:{}/#{}", server.port, view.fragment);
        screenshot(chromium, &url, &png, view.height)?;
        written.push(png);
    }
    Ok(written)
}

/// A TensorBoard process on a free loopback port, killed on drop.
struct TensorBoard {
    child: Child,
    port: u16,
}

impl TensorBoard {
    fn start(logdir: &Path) -> Result<TensorBoard> {
        let exe = crate::io::venv::venv_dir().join("bin/tensorboard");
        if !exe.is_file() {
            return Err(Error::data(&exe, "TensorBoard is not installed")
                .with_hint("run `scripts/setup venv`"));
        }
        let port = free_port()?;
        let child = Command::new(&exe)
            .arg("--logdir")
            .arg(logdir)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::io(&exe, e))?;
        let server = TensorBoard { child, port };
        server.wait_ready(Duration::from_secs(90))?;
        Ok(server)
    }

    /// Polls until the server answers `/data/runs` with the runs loaded.
    fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if http_get(self.port, "/data/runs").is_some_and(|body| body.trim() != "[]") {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        Err(Error::Argument {
            name: "tensorboard".into(),
            reason: format!(
                "TensorBoard on port {} listed no run within {:.0} s: are there event files (logs/events.out.tfevents.*) under the runs folder?",
                self.port,
                timeout.as_secs_f64()
            ),
        })
    }
}

impl Drop for TensorBoard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io(Path::new("127.0.0.1:0"), e))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::io(Path::new("127.0.0.1:0"), e))?
        .port();
    Ok(port)
}

/// The body of a plain HTTP/1.0 GET on loopback, if the server answers 200.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?;
    (status == "200").then(|| body.to_string())
}

/// The Chromium binary on the path.
fn find_chromium() -> Result<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .ok_or_else(|| Error::Argument {
            name: "chromium".into(),
            reason: "no Chromium found: run `scripts/setup chromium`".into(),
        })
}

/// Headless Chromium's screenshot of `url`, 1400 px wide.
fn screenshot(chromium: &str, url: &str, png: &Path, height: u32) -> Result<()> {
    let profile = tempfile_dir(png)?;
    let output = Command::new(chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size=1400,{height}"))
        .arg("--virtual-time-budget=15000")
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .output()
        .map_err(|e| Error::io(Path::new(chromium), e));
    let _ = std::fs::remove_dir_all(&profile);
    let output = output?;
    if !output.status.success() || !png.is_file() {
        return Err(Error::data(
            png,
            format!(
                "Chromium did not capture {url}: {}",
                String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            ),
        ));
    }
    Ok(())
}

/// A fresh browser profile folder beside the capture (removed after each shot).
fn tempfile_dir(png: &Path) -> Result<PathBuf> {
    let dir = png.with_extension("chromium-profile");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    Ok(dir)
}

/// Percent-encodes everything but unreserved URL characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
