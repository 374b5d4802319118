//! A zone as it is served: loaded from its file, changed by dynamic
//! updates while it runs. Every server of the zone in one process shares
//! one `LiveZone`, so all four see a change at once.
//!
//! ```text
//!  answer ──► snapshot() ──► the zone as it is now (a cheap Arc)
//!  update ──► change(): the new zone worked out ─► journal written and on
//!             disk ─► the new zone in place ─► version up (so replayed
//!             answers are thrown away) ─► the update answered
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use hickory_proto::op::ResponseCode;

use super::replication::Replication;
use super::update::{Refused, Updated};
use crate::trace::{RecordView, TraceEvent, TraceSink};
use crate::zone::{Zone, journal};

/// One zone, changeable while served.
pub struct LiveZone {
    current: RwLock<Arc<Zone>>,
    /// Bumped by every change.
    version: AtomicU64,
    /// Held while a change is worked out and written, so two updates at
    /// once apply one after the other.
    changing: Mutex<()>,
    /// Its place among its servers in other processes.
    replication: RwLock<Replication>,
    /// Where each change is told, so the story and the page show it.
    trace: OnceLock<TraceSink>,
}

impl LiveZone {
    pub fn new(zone: Zone) -> Arc<LiveZone> {
        Arc::new(LiveZone {
            current: RwLock::new(Arc::new(zone)),
            version: AtomicU64::new(0),
            changing: Mutex::new(()),
            replication: RwLock::new(Replication::Alone),
            trace: OnceLock::new(),
        })
    }

    /// Tell every change from now on in `trace` (as [`TraceEvent::ZoneChanged`]).
    pub fn tell_changes_to(&self, trace: TraceSink) {
        let _ = self.trace.set(trace);
    }

    fn told(
        &self,
        zone: &Zone,
        by: &str,
        deleted: &[hickory_proto::rr::Record],
        added: &[hickory_proto::rr::Record],
    ) {
        if let Some(trace) = self.trace.get() {
            // The SOA changes with every change; its serial is told apart.
            let told = |records: &[hickory_proto::rr::Record]| -> Vec<RecordView> {
                records
                    .iter()
                    .filter(|r| r.record_type() != hickory_proto::rr::RecordType::SOA)
                    .map(RecordView::from)
                    .collect()
            };
            trace.emit(
                0,
                TraceEvent::ZoneChanged {
                    zone: zone.origin().to_string(),
                    serial: zone.serial(),
                    by: by.to_string(),
                    deleted: told(deleted),
                    added: told(added),
                },
            );
        }
    }

    /// Its place among its servers in other processes.
    pub fn replication(&self) -> Replication {
        self.replication
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_replication(&self, replication: Replication) {
        *self.replication.write().unwrap_or_else(|e| e.into_inner()) = replication;
    }

    /// The zone as it is now.
    pub fn snapshot(&self) -> Arc<Zone> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many changes the zone has had since it was loaded.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Work out a change from the zone as it is, write it to the journal
    /// (when the zone has a file), and put it in place: in that order, so a
    /// change acknowledged is a change kept. `Ok(None)` if nothing changed.
    /// `by` says how it came (`update`, `lab`), for the trace.
    pub fn change(
        &self,
        by: &str,
        work_out: impl FnOnce(&Zone) -> Result<Option<Updated>, Refused>,
    ) -> Result<Option<Arc<Zone>>, Refused> {
        let _one_at_a_time = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.snapshot();
        let Some(updated) = work_out(&now)? else {
            return Ok(None);
        };
        if journal::can_have_journal(&now) {
            journal::append(&updated.zone, &updated.deleted, &updated.added).map_err(|e| {
                Refused {
                    rcode: ResponseCode::ServFail,
                    why: format!("the change could not be written to the journal: {e}"),
                }
            })?;
        }
        let next = Arc::new(updated.zone);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = next.clone();
        self.version.fetch_add(1, Ordering::AcqRel);
        self.told(&next, by, &updated.deleted, &updated.added);
        Ok(Some(next))
    }

    /// Put a whole zone in place (a transfer from the primary, RFC 5936),
    /// its serial newer than ours.
    pub fn replace(&self, zone: Zone) -> bool {
        let _one_at_a_time = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.snapshot();
        // Two fetches may finish out of order: only ever move forward.
        if !super::update::serial_newer(zone.serial(), now.serial()) {
            return false;
        }
        let zone = Arc::new(zone);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = zone.clone();
        self.version.fetch_add(1, Ordering::AcqRel);
        self.told(&zone, "transfer", &[], &[]);
        true
    }
}
