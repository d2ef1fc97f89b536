//! Hand-off to an idle worker: a build queued while one of this process's workers waits for a
//! job is taken for that worker in the same transaction as its creation, so the job is started
//! by the commit that makes the build durable (one fsync from POST to start, not two). The
//! worker, woken by the queue's notice, finds the job handed to it (`end_wait`).
//!
//! A worker announces its wait (`wait`) and ends it (`end_wait`); a write claims one idle
//! worker (`claim`) and, once its commit is known, settles the claim (`settle`): the job it
//! took, or none (the worker is idle again). `end_wait` waits for a claim in flight to settle,
//! so a job taken for a worker is never left without it.

use super::conn::Lite;
use super::dialect::exec;
use super::writer::Writer;
use crate::store::sql::Conn;
use crate::store::sql::jobs::take_in;
use crate::store::{JobRow, StoreResult};
use std::collections::HashMap;
use std::sync::{Condvar, Mutex};

enum Slot {
    Idle,
    /// A write is taking a job for this worker; its commit is not known yet.
    Claimed,
    Handed(Box<JobRow>),
}

#[derive(Default)]
pub(super) struct Handoff {
    slots: Mutex<HashMap<String, Slot>>,
    settled: Condvar,
}

impl Handoff {
    pub(super) fn wait(&self, worker_id: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(worker_id.to_string()).or_insert(Slot::Idle);
    }

    /// Ends the worker's wait: the job handed to it, if any.
    pub(super) fn end_wait(&self, worker_id: &str) -> Option<JobRow> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        while matches!(slots.get(worker_id), Some(Slot::Claimed)) {
            slots = self.settled.wait(slots).unwrap_or_else(|e| e.into_inner());
        }
        match slots.remove(worker_id) {
            Some(Slot::Handed(job)) => Some(*job),
            _ => None,
        }
    }

    fn claim(&self) -> Option<String> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let (id, slot) = slots.iter_mut().find(|(_, s)| matches!(s, Slot::Idle))?;
        *slot = Slot::Claimed;
        Some(id.clone())
    }

    fn settle(&self, worker_id: &str, job: Option<JobRow>) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.insert(
            worker_id.to_string(),
            job.map_or(Slot::Idle, |j| Slot::Handed(Box::new(j))),
        );
        self.settled.notify_all();
    }
}

impl Handoff {
    /// Runs `f` (a write that queues a job) through `writer` and, in the same transaction,
    /// takes a job for an idle worker of this process, if one waits: in a savepoint of its
    /// own, so a take that fails leaves `f`'s write alone.
    pub(super) fn write<T>(
        &self,
        writer: &Writer,
        f: impl FnOnce(&mut dyn Conn) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut claimed: Option<(String, Option<JobRow>)> = None;
        let out = writer.write(|tx| {
            let out = f(&mut Lite(tx))?;
            if let Some(worker) = self.claim() {
                exec(tx, "SAVEPOINT hand_off", [])?;
                let job = match take_in(&mut Lite(tx), &worker) {
                    Ok(job) => {
                        exec(tx, "RELEASE hand_off", [])?;
                        job
                    }
                    Err(e) => {
                        log::warn!("handing a job to {worker}: {e}");
                        tx.execute_batch("ROLLBACK TO hand_off; RELEASE hand_off")?;
                        None
                    }
                };
                claimed = Some((worker, job));
            }
            Ok(out)
        });
        if let Some((worker, job)) = claimed {
            // Handed only when committed: otherwise the take is gone with the rest.
            self.settle(&worker, if out.is_ok() { job } else { None });
        }
        out
    }
}
