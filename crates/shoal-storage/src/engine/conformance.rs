//! The engine conformance suite: every [`Engine`] implementation must pass it.
//!
//! Each check takes a fresh engine. `engine_tests!` instantiates the whole suite for one
//! engine constructor, so adding a check here runs it against every engine.

use super::*;

fn put(engine: &dyn Engine, cf: Cf, key: &[u8], value: &[u8]) {
    let mut batch = WriteBatch::new();
    batch.put(cf, key, value);
    engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
}

fn keys(iter: &mut dyn EngineIterator, forward: bool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while iter.valid().unwrap() {
        out.push(iter.key().to_vec());
        if forward { iter.next() } else { iter.prev() }
    }
    out
}

fn v(keys: &[&str]) -> Vec<Vec<u8>> {
    keys.iter().map(|k| k.as_bytes().to_vec()).collect()
}

pub(super) fn point_operations(engine: &dyn Engine) {
    assert_eq!(engine.get(Cf::Mvcc, b"a").unwrap(), None);
    put(engine, Cf::Mvcc, b"a", b"1");
    put(engine, Cf::Mvcc, b"", b"empty key");
    put(engine, Cf::Mvcc, b"b", b"");
    assert_eq!(engine.get(Cf::Mvcc, b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(engine.get(Cf::Mvcc, b"").unwrap(), Some(b"empty key".to_vec()));
    assert_eq!(engine.get(Cf::Mvcc, b"b").unwrap(), Some(vec![]), "empty values are values");
    put(engine, Cf::Mvcc, b"a", b"2");
    assert_eq!(engine.get(Cf::Mvcc, b"a").unwrap(), Some(b"2".to_vec()), "overwrite");
    let mut batch = WriteBatch::new();
    batch.delete(Cf::Mvcc, b"a");
    batch.delete(Cf::Mvcc, b"never written");
    engine.write(&batch, WriteOptions::SYNC).unwrap();
    assert_eq!(engine.get(Cf::Mvcc, b"a").unwrap(), None);
}

pub(super) fn column_families_are_separate(engine: &dyn Engine) {
    for (i, cf) in Cf::ALL.iter().enumerate() {
        put(engine, *cf, b"k", &[i as u8]);
    }
    for (i, cf) in Cf::ALL.iter().enumerate() {
        assert_eq!(engine.get(*cf, b"k").unwrap(), Some(vec![i as u8]));
        let mut iter = engine.iter(*cf, IterOptions::default()).unwrap();
        iter.seek_to_first();
        assert_eq!(keys(iter.as_mut(), true), v(&["k"]));
    }
}

pub(super) fn batches_are_ordered_and_atomic(engine: &dyn Engine) {
    let mut batch = WriteBatch::new();
    batch.put(Cf::Mvcc, b"a", b"1");
    batch.put(Cf::Mvcc, b"a", b"2");
    batch.put(Cf::Raft, b"r", b"1");
    batch.put(Cf::Mvcc, b"b", b"1");
    batch.delete(Cf::Mvcc, b"b");
    assert_eq!(batch.len(), 5);
    // An iterator opened before the write must not see any of it.
    let mut before = engine.iter(Cf::Mvcc, IterOptions::default()).unwrap();
    engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
    before.seek_to_first();
    assert!(!before.valid().unwrap(), "iterators read a snapshot");
    assert_eq!(engine.get(Cf::Mvcc, b"a").unwrap(), Some(b"2".to_vec()), "later op wins");
    assert_eq!(engine.get(Cf::Mvcc, b"b").unwrap(), None);
    assert_eq!(engine.get(Cf::Raft, b"r").unwrap(), Some(b"1".to_vec()));
    // An empty batch is fine.
    engine.write(&WriteBatch::new(), WriteOptions::SYNC).unwrap();
}

pub(super) fn concurrent_readers_see_whole_batches(engine: &dyn Engine) {
    // Each batch rewrites every key to the batch number; a reader must never see a mix.
    let keys: Vec<Vec<u8>> = (0..20u8).map(|i| vec![b'k', i]).collect();
    std::thread::scope(|s| {
        s.spawn(|| {
            for round in 0..200u32 {
                let mut batch = WriteBatch::new();
                for key in &keys {
                    batch.put(Cf::Mvcc, key.clone(), round.to_be_bytes().to_vec());
                }
                engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
            }
        });
        s.spawn(|| {
            for _ in 0..200 {
                let all = scan_all(engine, Cf::Mvcc, IterOptions::default()).unwrap();
                let values: std::collections::BTreeSet<_> =
                    all.iter().map(|(_, v)| v.clone()).collect();
                assert!(values.len() <= 1, "a reader saw a partial batch: {values:?}");
            }
        });
    });
}

pub(super) fn iterators_seek_and_respect_bounds(engine: &dyn Engine) {
    for k in ["a", "b", "c", "d", "e"] {
        put(engine, Cf::Mvcc, k.as_bytes(), b"x");
    }
    let mut all = engine.iter(Cf::Mvcc, IterOptions::default()).unwrap();
    all.seek_to_first();
    assert_eq!(keys(all.as_mut(), true), v(&["a", "b", "c", "d", "e"]));
    all.seek_to_last();
    assert_eq!(keys(all.as_mut(), false), v(&["e", "d", "c", "b", "a"]));
    all.seek(b"bb");
    assert_eq!(all.key(), b"c");
    all.seek_for_prev(b"bb");
    assert_eq!(all.key(), b"b");
    all.seek_for_prev(b"c");
    assert_eq!(all.key(), b"c", "seek_for_prev is inclusive");
    all.seek(b"f");
    assert!(!all.valid().unwrap());
    all.seek_for_prev(b"0");
    assert!(!all.valid().unwrap());
    // Direction changes in place.
    all.seek(b"c");
    all.prev();
    assert_eq!(all.key(), b"b");
    all.next();
    all.next();
    assert_eq!(all.key(), b"d");

    let mut bounded = engine.iter(Cf::Mvcc, IterOptions::bounded("b", "d")).unwrap();
    bounded.seek_to_first();
    assert_eq!(keys(bounded.as_mut(), true), v(&["b", "c"]));
    bounded.seek_to_last();
    assert_eq!(keys(bounded.as_mut(), false), v(&["c", "b"]));
    bounded.seek(b"a");
    assert_eq!(bounded.key(), b"b", "seek below the lower bound clamps");
    bounded.seek(b"d");
    assert!(!bounded.valid().unwrap(), "the upper bound is exclusive");
    bounded.seek_for_prev(b"z");
    assert_eq!(bounded.key(), b"c", "seek_for_prev above the upper bound clamps");
    bounded.seek_for_prev(b"a");
    assert!(!bounded.valid().unwrap());

    let mut empty = engine.iter(Cf::Mvcc, IterOptions::bounded("bb", "bc")).unwrap();
    empty.seek_to_first();
    assert!(!empty.valid().unwrap());
    empty.seek_to_last();
    assert!(!empty.valid().unwrap());
}

pub(super) fn delete_range_removes_half_open_span(engine: &dyn Engine) {
    for k in ["a", "b", "c", "d"] {
        put(engine, Cf::Mvcc, k.as_bytes(), b"x");
        put(engine, Cf::Local, k.as_bytes(), b"x");
    }
    let mut batch = WriteBatch::new();
    batch.delete_range(Cf::Mvcc, b"b", b"d");
    batch.delete_range(Cf::Mvcc, b"z", b"a"); // empty span: no effect
    engine.write(&batch, WriteOptions::NO_SYNC).unwrap();
    let left: Vec<_> = scan_all(engine, Cf::Mvcc, IterOptions::default())
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(left, v(&["a", "d"]));
    assert_eq!(scan_all(engine, Cf::Local, IterOptions::default()).unwrap().len(), 4);
}

pub(super) fn binary_keys_order_bytewise(engine: &dyn Engine) {
    let keys_in: [&[u8]; 6] = [b"\xff", b"\x00", b"", b"\x00\x00", b"\x01", b"\xff\xff"];
    for k in keys_in {
        put(engine, Cf::Raft, k, b"v");
    }
    let mut sorted: Vec<Vec<u8>> = keys_in.iter().map(|k| k.to_vec()).collect();
    sorted.sort();
    let got: Vec<_> = scan_all(engine, Cf::Raft, IterOptions::default())
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(got, sorted);
}

/// Instantiates every conformance check as a `#[test]` for one engine constructor.
macro_rules! engine_tests {
    ($make:expr) => {
        $crate::engine::conformance::engine_tests!(@each $make;
            point_operations,
            column_families_are_separate,
            batches_are_ordered_and_atomic,
            concurrent_readers_see_whole_batches,
            iterators_seek_and_respect_bounds,
            delete_range_removes_half_open_span,
            binary_keys_order_bytewise
        );
    };
    (@each $make:expr; $($check:ident),*) => {
        $(
            #[test]
            fn $check() {
                let (engine, guard) = $make;
                $crate::engine::conformance::$check(&engine);
                drop(engine); // close the store before its directory goes
                drop(guard);
            }
        )*
    };
}
pub(crate) use engine_tests;

mod memory {
    super::engine_tests!((crate::MemoryEngine::new(), None::<tempfile::TempDir>));
}

mod rocks {
    super::engine_tests!({
        let dir = tempfile::tempdir().unwrap();
        (crate::RocksEngine::open(dir.path().join("store")).unwrap(), dir)
    });
}
