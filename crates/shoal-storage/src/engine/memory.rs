//! The in-memory engine: persistent ordered maps behind a lock.
//!
//! Each column family is an `imbl::OrdMap`, a persistent B-tree whose clone is O(1) and shares
//! structure, so an iterator takes a true snapshot by cloning the map under the read lock. A
//! write batch is applied under the write lock, so readers see all of it or none of it.
//!
//! Nothing is durable: `sync` is accepted and ignored. Use it for simulation and fast unit
//! tests, never for a server.

use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use imbl::OrdMap;

use super::{BatchOp, Cf, Engine, EngineIterator, IterOptions, Reader, WriteBatch, WriteOptions};
use crate::Result;

type Map = OrdMap<Vec<u8>, Vec<u8>>;

/// An engine that keeps everything in memory.
#[derive(Debug, Default)]
pub struct MemoryEngine {
    cfs: RwLock<[Map; Cf::ALL.len()]>,
}

impl MemoryEngine {
    /// Returns an empty engine.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, [Map; Cf::ALL.len()]> {
        // Writers mutate the maps only through complete `OrdMap` operations, so a panic cannot
        // leave a map torn: recover from poisoning.
        self.cfs.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, [Map; Cf::ALL.len()]> {
        self.cfs.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn index(cf: Cf) -> usize {
    Cf::ALL.iter().position(|c| *c == cf).expect("every Cf is in Cf::ALL")
}

impl Reader for MemoryEngine {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.read()[index(cf)].get(key).cloned())
    }

    fn iter(&self, cf: Cf, opts: IterOptions) -> Result<Box<dyn EngineIterator + '_>> {
        let map = self.read()[index(cf)].clone();
        Ok(Box::new(MemoryIterator { map, lower: opts.lower, upper: opts.upper, current: None }))
    }
}

impl Engine for MemoryEngine {
    fn write(&self, batch: &WriteBatch, _opts: WriteOptions) -> Result<()> {
        let mut cfs = self.write_lock();
        for op in batch.ops() {
            match op {
                BatchOp::Put { cf, key, value } => {
                    cfs[index(*cf)].insert(key.clone(), value.clone());
                }
                BatchOp::Delete { cf, key } => {
                    cfs[index(*cf)].remove(key);
                }
                BatchOp::DeleteRange { cf, start, end } => {
                    let map = &mut cfs[index(*cf)];
                    if start < end {
                        let doomed: Vec<Vec<u8>> = map
                            .range::<_, [u8]>((
                                Bound::Included(&start[..]),
                                Bound::Excluded(&end[..]),
                            ))
                            .map(|(k, _)| k.clone())
                            .collect();
                        for key in doomed {
                            map.remove(&key);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn sync_wal(&self) -> Result<()> {
        Ok(())
    }
}

/// An iterator over a snapshot (a cheap clone) of one column family.
struct MemoryIterator {
    map: Map,
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    current: Option<(Vec<u8>, Vec<u8>)>,
}

impl MemoryIterator {
    fn in_bounds(&self, key: &[u8]) -> bool {
        self.lower.as_deref().is_none_or(|l| key >= l)
            && self.upper.as_deref().is_none_or(|u| key < u)
    }

    /// Positions on the first entry with a key after (or at, if `inclusive`) `key`.
    fn forward_from(&mut self, key: &[u8], inclusive: bool) {
        let mut start: Bound<&[u8]> =
            if inclusive { Bound::Included(key) } else { Bound::Excluded(key) };
        if let Some(lower) = self.lower.as_deref()
            && key < lower
        {
            start = Bound::Included(lower);
        }
        let found = self.map.range::<_, [u8]>((start, Bound::Unbounded)).next();
        self.current =
            found.filter(|(k, _)| self.in_bounds(k)).map(|(k, v)| (k.clone(), v.clone()));
    }

    /// Positions on the last entry with a key before (or at, if `inclusive`) `key`.
    fn backward_from(&mut self, key: &[u8], inclusive: bool) {
        let mut end: Bound<&[u8]> =
            if inclusive { Bound::Included(key) } else { Bound::Excluded(key) };
        if let Some(upper) = self.upper.as_deref()
            && key >= upper
        {
            end = Bound::Excluded(upper);
        }
        let found = self.map.range::<_, [u8]>((Bound::Unbounded, end)).next_back();
        self.current =
            found.filter(|(k, _)| self.in_bounds(k)).map(|(k, v)| (k.clone(), v.clone()));
    }
}

impl EngineIterator for MemoryIterator {
    fn seek(&mut self, key: &[u8]) {
        self.forward_from(key, true);
    }

    fn seek_for_prev(&mut self, key: &[u8]) {
        self.backward_from(key, true);
    }

    fn seek_to_first(&mut self) {
        let lower = self.lower.clone().unwrap_or_default();
        self.forward_from(&lower, true);
    }

    fn seek_to_last(&mut self) {
        match self.upper.clone() {
            Some(upper) => self.backward_from(&upper, false),
            None => {
                self.current = self
                    .map
                    .iter()
                    .next_back()
                    .filter(|(k, _)| self.in_bounds(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
            }
        }
    }

    fn next(&mut self) {
        let (key, _) = self.current.take().expect("next() on an invalid iterator");
        self.forward_from(&key, false);
    }

    fn prev(&mut self) {
        let (key, _) = self.current.take().expect("prev() on an invalid iterator");
        self.backward_from(&key, false);
    }

    fn valid(&self) -> Result<bool> {
        Ok(self.current.is_some())
    }

    fn key(&self) -> &[u8] {
        &self.current.as_ref().expect("key() on an invalid iterator").0
    }

    fn value(&self) -> &[u8] {
        &self.current.as_ref().expect("value() on an invalid iterator").1
    }
}
