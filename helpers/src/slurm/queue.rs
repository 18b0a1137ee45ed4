//! What the Slurm client commands say: the partitions (`sinfo`), a submission's job id
//! (`sbatch --parsable`) and the state and exit code of each array task (`scontrol show
//! job` while the controller remembers the job, `sacct` after, where accounting is on).
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::process::Command;

/// Runs a Slurm client command; a missing command or a refusal is an error naming it.
fn slurm(tool: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(tool).args(args).output().map_err(|e| Error::Argument {
        name: tool.into(),
        reason: format!("cannot run `{tool}` ({e}): is Slurm's client on the PATH (and SLURM_CONF set, for a cluster of your own)?"),
    })?;
    if !out.status.success() {
        return Err(Error::Argument {
            name: tool.into(),
            reason: format!(
                "`{tool} {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Errs unless `partition` exists on the cluster (checked before anything is submitted).
pub fn check_partition(partition: &str) -> Result<()> {
    let listed = slurm("sinfo", &["-h", "-o", "%P"])?;
    let names: Vec<&str> = listed
        .lines()
        .map(|l| l.trim().trim_end_matches('*'))
        .collect();
    if names.contains(&partition) {
        Ok(())
    } else {
        Err(Error::Argument {
            name: "partition".into(),
            reason: format!(
                "`{partition}` is not a partition of this cluster (sinfo lists: {})",
                names.join(", ")
            ),
        })
    }
}

/// Submits the script at `path` with `sbatch`; returns the job id.
pub fn sbatch(path: &std::path::Path) -> Result<u64> {
    let out = slurm("sbatch", &["--parsable", &path.display().to_string()])?;
    // `--parsable` answers `<job>` or `<job>;<cluster>`.
    out.trim()
        .split(';')
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| Error::Argument {
            name: "sbatch".into(),
            reason: format!("unexpected answer `{}` (expected a job id)", out.trim()),
        })
}

/// Whether a Slurm controller answers (`sinfo` runs and lists a partition).
pub fn cluster_answers() -> bool {
    slurm("sinfo", &["-h", "-o", "%P"]).is_ok_and(|out| !out.trim().is_empty())
}

/// What Slurm says of one array task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `CANCELLED`, `TIMEOUT`, …
    pub state: String,
    /// `exit:signal`, e.g. `0:15` for a task killed by SIGTERM.
    pub exit: String,
}

impl TaskState {
    /// Still waiting for (or holding) a node.
    pub fn is_queued(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING" | "CONFIGURING" | "REQUEUED" | "REQUEUE_HOLD" | "RESIZING" | "SUSPENDED"
        )
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state.as_str(), "RUNNING" | "COMPLETING")
    }
}

/// The state of each array task of `job` that Slurm still knows: `scontrol` first (the
/// controller keeps ended jobs for `MinJobAge`), then `sacct` for the tasks it has
/// forgotten (nothing when accounting is off). A job neither knows gives an empty map.
pub fn task_states(job: u64, tasks: usize) -> Result<BTreeMap<usize, TaskState>> {
    let id = job.to_string();
    let mut states = match slurm("scontrol", &["-o", "show", "job", &id]) {
        Ok(out) => parse_scontrol(&out, tasks),
        Err(e) if e.to_string().contains("Invalid job id") => BTreeMap::new(),
        Err(e) => return Err(e),
    };
    if states.len() < tasks {
        let args = ["-n", "-P", "-X", "-j", &id, "-o", "JobID,State,ExitCode"];
        if let Ok(out) = slurm("sacct", &args) {
            for (index, state) in parse_sacct(&out, tasks) {
                states.entry(index).or_insert(state);
            }
        }
    }
    Ok(states)
}

/// `scontrol -o show job` prints one line per array task (`ArrayTaskId=3 … JobState=…
/// ExitCode=0:15`); the pending ones share a line with a range (`ArrayTaskId=1-3%2`).
fn parse_scontrol(out: &str, tasks: usize) -> BTreeMap<usize, TaskState> {
    let mut states = BTreeMap::new();
    for line in out.lines() {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|t| t.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
        };
        let (Some(ids), Some(state)) = (field("ArrayTaskId"), field("JobState")) else {
            continue;
        };
        let exit = field("ExitCode").unwrap_or_default();
        for index in index_list(&ids, tasks) {
            let task = TaskState {
                state: state.clone(),
                exit: exit.clone(),
            };
            states.insert(index, task);
        }
    }
    states
}

/// `sacct -n -P -X -o JobID,State,ExitCode` rows: `12_3|CANCELLED by 0|0:15`, pending
/// tasks as `12_[1-3%2]`.
fn parse_sacct(out: &str, tasks: usize) -> BTreeMap<usize, TaskState> {
    let mut states = BTreeMap::new();
    for line in out.lines() {
        let cols: Vec<&str> = line.split('|').collect();
        let [id, state, exit] = cols[..] else {
            continue;
        };
        let Some((_, ids)) = id.split_once('_') else {
            continue;
        };
        let ids = ids.trim_start_matches('[').trim_end_matches(']');
        let state = state.split_whitespace().next().unwrap_or("").to_string();
        for index in index_list(ids, tasks) {
            let task = TaskState {
                state: state.clone(),
                exit: exit.to_string(),
            };
            states.insert(index, task);
        }
    }
    states
}

/// Indices of an array range list: `3`, `1-3`, `0,2,5-7`, with an optional `%N` throttle;
/// indices past `tasks` are dropped (they are not this sweep's).
fn index_list(ids: &str, tasks: usize) -> Vec<usize> {
    let ids = ids.split('%').next().unwrap_or("");
    let mut out = Vec::new();
    for part in ids.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
            out.extend((a..=b.min(tasks.saturating_sub(1))).filter(|i| *i < tasks));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(state: &str, exit: &str) -> TaskState {
        TaskState {
            state: state.into(),
            exit: exit.into(),
        }
    }

    #[test]
    fn scontrol_lines_give_each_task_its_state_and_exit_code() {
        // As printed by slurmctld 22.05 for a 4-task array: pending range, one cancelled.
        let out = "JobId=7 ArrayJobId=7 ArrayTaskId=2-3%2 JobName=lab JobState=PENDING Reason=Resources ExitCode=0:0\n\
                   JobId=9 ArrayJobId=7 ArrayTaskId=1 JobName=lab JobState=CANCELLED Reason=None ExitCode=0:15\n\
                   JobId=8 ArrayJobId=7 ArrayTaskId=0 JobName=lab JobState=COMPLETED Reason=None ExitCode=0:0\n";
        let states = parse_scontrol(out, 4);
        assert_eq!(states.len(), 4);
        assert_eq!(states[&0], state("COMPLETED", "0:0"));
        assert_eq!(states[&1], state("CANCELLED", "0:15"));
        assert!(states[&2].is_queued() && states[&3].is_queued());
    }

    #[test]
    fn sacct_rows_give_each_task_its_state_and_exit_code() {
        let out = "7_0|COMPLETED|0:0\n7_1|CANCELLED by 0|0:15\n7_[2-3]|PENDING|0:0\n7_2.batch|x\n";
        let states = parse_sacct(out, 4);
        assert_eq!(states[&1], state("CANCELLED", "0:15"));
        assert!(states[&3].is_queued());
        assert_eq!(states.len(), 4);
    }

    #[test]
    fn array_ranges_read_with_lists_and_throttles() {
        assert_eq!(index_list("0,2,5-7%2", 10), vec![0, 2, 5, 6, 7]);
        assert_eq!(index_list("3-9", 5), vec![3, 4]);
        assert!(index_list("junk", 5).is_empty());
    }
}
