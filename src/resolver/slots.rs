//! How many questions the resolver has out to name servers at once: in
//! all (`--max-outstanding`), and per zone asked (a quarter of that), so
//! that a zone whose servers never answer cannot take every slot from the
//! others, as BIND's fetches-per-zone keeps it from doing.
//!
//! ```text
//!  a question to a server of Z ──► one of Z's slots ──► one of all the slots ──► sent
//!                                    │ all taken: wait for one, within the walk's deadline
//!                                    ▼
//!          a flood of questions to a dead zone waits here, holding none of the others'
//! ```
//!
//! A zone's slots exist while questions to it are out or waiting, and are
//! forgotten when the last one is done.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hickory_proto::rr::LowerName;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

/// The share of all the slots one zone may hold.
const ZONE_SHARE: usize = 4;

pub struct UpstreamSlots {
    all: Semaphore,
    per_zone: usize,
    zones: Mutex<HashMap<LowerName, Arc<Semaphore>>>,
}

/// Which limit a question could not get a slot within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// Its zone's share.
    Zone,
    /// All the slots.
    All,
}

/// One question's slot: given back when dropped.
pub struct Slot<'a> {
    _zone: ZoneSlot<'a>,
    _all: SemaphorePermit<'a>,
}

/// A slot of one zone's, or the wait for one: either way the zone's
/// semaphore is forgotten when nobody holds or waits for it any more.
struct ZoneSlot<'a> {
    slots: &'a UpstreamSlots,
    zone: LowerName,
    semaphore: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for ZoneSlot<'_> {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut zones = self.slots.zones.lock().unwrap_or_else(|e| e.into_inner());
        // The map's reference and ours: nobody else holds or waits.
        if Arc::strong_count(&self.semaphore) == 2 {
            zones.remove(&self.zone);
        }
    }
}

impl UpstreamSlots {
    /// `all` slots, a quarter of them (at least one) for any one zone.
    pub fn new(all: usize) -> UpstreamSlots {
        let all = all.max(1);
        UpstreamSlots {
            all: Semaphore::new(all),
            per_zone: (all / ZONE_SHARE).max(1),
            zones: Mutex::new(HashMap::new()),
        }
    }

    /// How many questions one zone may have out at once.
    pub fn per_zone(&self) -> usize {
        self.per_zone
    }

    /// A slot for a question to a server of `zone`, waiting until
    /// `deadline` at most.
    pub async fn acquire(
        &self,
        zone: &LowerName,
        deadline: tokio::time::Instant,
    ) -> Result<Slot<'_>, Full> {
        let semaphore = self
            .zones
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(zone.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_zone)))
            .clone();
        let mut zone_slot = ZoneSlot {
            slots: self,
            zone: zone.clone(),
            semaphore: semaphore.clone(),
            permit: None,
        };
        match tokio::time::timeout_at(deadline, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => zone_slot.permit = Some(permit),
            _ => return Err(Full::Zone),
        }
        match tokio::time::timeout_at(deadline, self.all.acquire()).await {
            Ok(Ok(all)) => Ok(Slot {
                _zone: zone_slot,
                _all: all,
            }),
            _ => Err(Full::All),
        }
    }

    /// How many zones have questions out or waiting now.
    pub fn zones_in_use(&self) -> usize {
        self.zones.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::time::Duration;

    use super::*;

    fn zone(name: &str) -> LowerName {
        LowerName::from_str(name).unwrap()
    }

    #[tokio::test]
    async fn one_zone_takes_a_quarter_and_the_others_the_rest() {
        let slots = UpstreamSlots::new(8);
        let soon = || tokio::time::Instant::now() + Duration::from_millis(50);
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(slots.acquire(&zone("dead.example."), soon()).await.unwrap());
        }
        assert_eq!(
            slots.acquire(&zone("dead.example."), soon()).await.err(),
            Some(Full::Zone)
        );
        for i in 0..6 {
            let other = zone(&format!("z{i}.example."));
            held.push(slots.acquire(&other, soon()).await.unwrap());
        }
        assert_eq!(
            slots.acquire(&zone("late.example."), soon()).await.err(),
            Some(Full::All)
        );
        drop(held);
        assert_eq!(slots.zones_in_use(), 0, "forgotten when done");
    }
}
