//! Dynamic batching: requests that arrive together share one model run. Handlers put
//! jobs on a bounded queue (full → the request is refused with 503, so memory stays
//! bounded under a flood); one worker thread takes the first waiting job and every job
//! already waiting behind it (up to `max_batch` images; with `max_wait` > 0 it also waits
//! that long for more), runs the model once, logs the batch and answers each job. While
//! a batch runs the next one queues up, so batches grow with the load by themselves and a
//! lone request never waits for company. The model is read once per batch, so a hot swap lets the
//! batch in flight finish on the old model.
use super::decode::RequestError;
use super::model::Ranked;
use super::Shared;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tch::Tensor;
use tokio::sync::oneshot;

/// How requests are gathered into batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Most images in one model run.
    pub max_batch: usize,
    /// How long the first job of a batch waits for company that has not arrived yet
    /// (0: take only what is already queued).
    pub max_wait: Duration,
    /// Jobs that may wait; one more is refused with 503.
    pub queue: usize,
}

impl Default for BatchOptions {
    /// 64 images, no waiting, 512 jobs.
    fn default() -> Self {
        BatchOptions {
            max_batch: 64,
            max_wait: Duration::ZERO,
            queue: 512,
        }
    }
}

/// What a prediction job gets back.
#[derive(Debug, Clone)]
pub struct Answer {
    pub model_version: String,
    pub engine: String,
    /// Per image, the top classes.
    pub predictions: Vec<Vec<Ranked>>,
    /// Images in the model run that served this job.
    pub batch_images: usize,
}

/// One request's images, waiting for the model.
pub struct Job {
    pub images: Vec<Vec<u8>>,
    pub top_k: usize,
    pub reply: oneshot::Sender<Result<Answer, RequestError>>,
}

/// The handlers' end of the queue.
pub struct Batcher {
    queue: SyncSender<Job>,
    waiting: Arc<AtomicUsize>,
}

impl Batcher {
    /// The queue and the worker that will drain it ([`Worker::spawn`]).
    pub(super) fn new(options: BatchOptions) -> (Batcher, Worker) {
        let (queue, jobs) = sync_channel(options.queue.max(1));
        let waiting = Arc::new(AtomicUsize::new(0));
        let worker = Worker {
            jobs,
            options,
            waiting: waiting.clone(),
        };
        (Batcher { queue, waiting }, worker)
    }

    /// Queues a job; a full queue answers 503 at once.
    pub fn submit(&self, job: Job) -> Result<(), RequestError> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.queue.try_send(job).map_err(|e| {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            match e {
                TrySendError::Full(_) => RequestError::new(
                    503,
                    "the prediction queue is full; retry after a short wait",
                ),
                TrySendError::Disconnected(_) => {
                    RequestError::new(503, "the model worker has stopped")
                }
            }
        })
    }

    /// Jobs waiting for the model now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// The model thread's end of the queue.
pub(super) struct Worker {
    jobs: Receiver<Job>,
    options: BatchOptions,
    waiting: Arc<AtomicUsize>,
}

impl Worker {
    /// Starts the model thread; it stops when the server state is dropped.
    pub(super) fn spawn(self, shared: Weak<Shared>) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("lab-serve-model".into())
            .spawn(move || work(self, shared))
            .map(|_| ())
    }
}

fn work(worker: Worker, shared: Weak<Shared>) {
    let Worker {
        jobs,
        options,
        waiting,
    } = worker;
    while let Ok(first) = jobs.recv() {
        let deadline = Instant::now() + options.max_wait;
        let mut images = first.images.len();
        let mut batch = vec![first];
        while images < options.max_batch {
            let next = match jobs.try_recv() {
                Ok(job) => Ok(job),
                Err(_) if options.max_wait.is_zero() => break,
                Err(_) => jobs.recv_timeout(deadline.saturating_duration_since(Instant::now())),
            };
            match next {
                Ok(job) => {
                    images += job.images.len();
                    batch.push(job);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        waiting.fetch_sub(batch.len(), Ordering::Relaxed);
        let Some(shared) = shared.upgrade() else {
            break;
        };
        run_batch(&shared, batch);
    }
}

/// Runs one batch and answers every job in it.
fn run_batch(shared: &Shared, batch: Vec<Job>) {
    let model = shared.model();
    let len = model.spec.len();
    let (fits, misfits): (Vec<Job>, Vec<Job>) = batch
        .into_iter()
        .partition(|j| j.images.iter().all(|i| i.len() == len));
    for job in misfits {
        let _ = job.reply.send(Err(RequestError::new(
            422,
            format!(
                "an image does not have the {len} values the model {} takes",
                model.version
            ),
        )));
    }
    if fits.is_empty() {
        return;
    }
    let started = Instant::now();
    let images: Vec<&Vec<u8>> = fits.iter().flat_map(|j| &j.images).collect();
    let k = fits.iter().map(|j| j.top_k).max().unwrap_or(1);
    let outcome = predict(&model, &images, k).and_then(|top| {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        shared.monitor.record(&model.version, &images, &top, ms)?;
        Ok(top)
    });
    let top = match outcome {
        Ok(top) => top,
        Err(e) => {
            for job in fits {
                let _ = job.reply.send(Err(RequestError::new(
                    500,
                    format!("prediction failed: {e}"),
                )));
            }
            return;
        }
    };
    shared
        .metrics
        .batch(top.iter().map(|r| r[0].label.as_str()));
    let total = images.len();
    let mut rows = top.into_iter();
    for job in fits {
        let predictions = rows
            .by_ref()
            .take(job.images.len())
            .map(|mut r| {
                r.truncate(job.top_k);
                r
            })
            .collect();
        let _ = job.reply.send(Ok(Answer {
            model_version: model.version.clone(),
            engine: model.engine.clone(),
            predictions,
            batch_images: total,
        }));
    }
}

fn predict(
    model: &super::model::ServedModel,
    images: &[&Vec<u8>],
    k: usize,
) -> crate::Result<Vec<Vec<Ranked>>> {
    let spec = model.spec;
    let flat: Vec<u8> = images.iter().flat_map(|i| i.iter().copied()).collect();
    let x = Tensor::from_slice(&flat).view([
        images.len() as i64,
        i64::from(spec.channels),
        i64::from(spec.height),
        i64::from(spec.width),
    ]);
    model.top_k(&model.probabilities(&x)?, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_refuses_at_once_with_503_and_counts_only_waiting_jobs() {
        let (batcher, _worker) = Batcher::new(BatchOptions {
            queue: 1,
            ..BatchOptions::default()
        });
        let job = || Job {
            images: vec![vec![0; 4]],
            top_k: 1,
            reply: oneshot::channel().0,
        };
        assert!(batcher.submit(job()).is_ok());
        let refused = batcher.submit(job()).unwrap_err();
        assert_eq!(refused.status, 503, "{refused}");
        assert_eq!(batcher.waiting(), 1);
    }
}
