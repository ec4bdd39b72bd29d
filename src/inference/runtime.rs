//! The inference runtime: a model on its own thread (never a tokio worker), requests batched
//! together (up to a batch size, waiting at most a little for company), each reply carrying its
//! latency. A caller that goes away cancels its request; shutting down fails what is still queued.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// A model that runs a batch of inputs at once.
pub trait BatchModel: Send + 'static {
    type Input: Send + 'static;
    type Output: Send + 'static;
    fn run(&mut self, inputs: Vec<Self::Input>) -> Result<Vec<Self::Output>, String>;
}

/// What a request gets back.
#[derive(Debug)]
pub struct Reply<O> {
    pub output: Result<O, String>,
    /// From submission to reply.
    pub latency: Duration,
    /// Of which waiting in the queue.
    pub queued: Duration,
    /// How many requests shared the forward pass.
    pub batch_size: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuntimeError {
    #[error("the inference runtime has stopped")]
    Stopped,
}

struct Job<I, O> {
    input: I,
    reply: oneshot::Sender<Reply<O>>,
    enqueued: Instant,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_batch: usize,
    pub max_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch: 32,
            max_wait: Duration::from_millis(5),
        }
    }
}

pub struct Runtime<M: BatchModel> {
    tx: Option<mpsc::Sender<Job<M::Input, M::Output>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl<M: BatchModel> Runtime<M> {
    /// Starts the model's thread.
    pub fn start(model: M, limits: Limits) -> Runtime<M> {
        let (tx, rx) = mpsc::channel::<Job<M::Input, M::Output>>();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("hugflake-inference".into())
            .spawn(move || worker(model, rx, limits, flag))
            .ok();
        Runtime {
            tx: Some(tx),
            stop,
            thread,
        }
    }

    /// Queues one input; the receiver yields its reply. Dropping the receiver cancels the request
    /// if it has not started.
    pub fn submit(
        &self,
        input: M::Input,
    ) -> Result<oneshot::Receiver<Reply<M::Output>>, RuntimeError> {
        if self.stop.load(Ordering::SeqCst) {
            return Err(RuntimeError::Stopped);
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or(RuntimeError::Stopped)?
            .send(Job {
                input,
                reply,
                enqueued: Instant::now(),
            })
            .map_err(|_| RuntimeError::Stopped)?;
        Ok(rx)
    }

    pub async fn call(&self, input: M::Input) -> Result<Reply<M::Output>, RuntimeError> {
        self.submit(input)?.await.map_err(|_| RuntimeError::Stopped)
    }

    /// Stops taking requests, fails the queued ones, and waits for the batch in progress.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl<M: BatchModel> Drop for Runtime<M> {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn worker<M: BatchModel>(
    mut model: M,
    rx: mpsc::Receiver<Job<M::Input, M::Output>>,
    limits: Limits,
    stop: Arc<AtomicBool>,
) {
    let fail = |job: Job<M::Input, M::Output>| {
        let _ = job.reply.send(Reply {
            output: Err("cancelled: the runtime is shutting down".into()),
            latency: job.enqueued.elapsed(),
            queued: job.enqueued.elapsed(),
            batch_size: 0,
        });
    };
    loop {
        let first = match rx.recv() {
            Ok(j) => j,
            Err(_) => return,
        };
        if stop.load(Ordering::SeqCst) {
            fail(first);
            rx.try_iter().for_each(fail);
            return;
        }
        let mut jobs = vec![first];
        let deadline = Instant::now() + limits.max_wait;
        while jobs.len() < limits.max_batch.max(1) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(j) => jobs.push(j),
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // Callers who went away are not computed.
        jobs.retain(|j| !j.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        let started = Instant::now();
        let n = jobs.len();
        let mut inputs = Vec::with_capacity(n);
        let mut rest = Vec::with_capacity(n);
        for j in jobs {
            inputs.push(j.input);
            rest.push((j.reply, j.enqueued));
        }
        let outputs = model.run(inputs);
        match outputs {
            Ok(outs) if outs.len() == n => {
                for ((reply, enqueued), out) in rest.into_iter().zip(outs) {
                    let _ = reply.send(Reply {
                        output: Ok(out),
                        latency: enqueued.elapsed(),
                        queued: started.saturating_duration_since(enqueued),
                        batch_size: n,
                    });
                }
            }
            other => {
                let msg = match other {
                    Err(e) => e,
                    Ok(outs) => format!("the model returned {} results for {n} inputs", outs.len()),
                };
                for (reply, enqueued) in rest {
                    let _ = reply.send(Reply {
                        output: Err(msg.clone()),
                        latency: enqueued.elapsed(),
                        queued: started.saturating_duration_since(enqueued),
                        batch_size: n,
                    });
                }
            }
        }
    }
}

impl BatchModel for super::sentence::SentenceEncoder {
    type Input = String;
    type Output = Vec<f32>;
    fn run(&mut self, inputs: Vec<String>) -> Result<Vec<Vec<f32>>, String> {
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        self.encode(&refs, refs.len().max(1))
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Doubles numbers, slowly, and records the batches it saw.
    struct Slow {
        seen: Arc<Mutex<Vec<Vec<u32>>>>,
        delay: Duration,
    }

    impl BatchModel for Slow {
        type Input = u32;
        type Output = u32;
        fn run(&mut self, inputs: Vec<u32>) -> Result<Vec<u32>, String> {
            std::thread::sleep(self.delay);
            if let Ok(mut s) = self.seen.lock() {
                s.push(inputs.clone());
            }
            if inputs.contains(&13) {
                return Err("unlucky input".into());
            }
            Ok(inputs.into_iter().map(|x| x * 2).collect())
        }
    }

    fn slow(delay_ms: u64) -> (Slow, Arc<Mutex<Vec<Vec<u32>>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        (
            Slow {
                seen: seen.clone(),
                delay: Duration::from_millis(delay_ms),
            },
            seen,
        )
    }

    #[tokio::test]
    async fn concurrent_requests_share_batches_and_report_latency() {
        let (model, seen) = slow(20);
        let rt = Runtime::start(
            model,
            Limits {
                max_batch: 8,
                max_wait: Duration::from_millis(50),
            },
        );
        let rxs: Vec<_> = (0..16).filter_map(|i| rt.submit(100 + i).ok()).collect();
        let mut total = 0;
        for (i, rx) in rxs.into_iter().enumerate() {
            let reply = rx.await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(reply.output, Ok((100 + i as u32) * 2));
            assert!(reply.batch_size > 1 && reply.batch_size <= 8);
            assert!(reply.latency >= reply.queued);
            total += 1;
        }
        assert_eq!(total, 16);
        let batches = seen.lock().map(|s| s.len()).unwrap_or(0);
        assert!(batches <= 4, "{batches} batches for 16 requests");
    }

    #[tokio::test]
    async fn a_dropped_request_is_not_computed_and_errors_reach_the_batch() {
        let (model, seen) = slow(100);
        let rt = Runtime::start(
            model,
            Limits {
                max_batch: 1,
                max_wait: Duration::from_millis(1),
            },
        );
        let first = rt.submit(1).unwrap_or_else(|e| panic!("{e}"));
        let dropped = rt.submit(2).unwrap_or_else(|e| panic!("{e}"));
        drop(dropped);
        let bad = rt.submit(13).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.await.map(|r| r.output).ok(), Some(Ok(2)));
        let bad = bad.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bad.output, Err("unlucky input".into()));
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert!(
            !seen.iter().flatten().any(|x| *x == 2),
            "cancelled input ran: {seen:?}"
        );
    }

    #[tokio::test]
    async fn shutdown_fails_what_is_queued() {
        let (model, _) = slow(100);
        let rt = Runtime::start(
            model,
            Limits {
                max_batch: 1,
                max_wait: Duration::from_millis(1),
            },
        );
        let a = rt.submit(1).unwrap_or_else(|e| panic!("{e}"));
        let b = rt.submit(2).unwrap_or_else(|e| panic!("{e}"));
        tokio::time::sleep(Duration::from_millis(20)).await;
        rt.shutdown();
        assert_eq!(a.await.map(|r| r.output).ok(), Some(Ok(2)));
        let b = b.await.unwrap_or_else(|e| panic!("{e}"));
        assert!(b.output.is_err_and(|e| e.contains("cancelled")));
    }
}
