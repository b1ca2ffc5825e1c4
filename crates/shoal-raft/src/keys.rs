//! Keys of the `raft` column family: every range's log and hard state.
//!
//! ```text
//!   <range_id:8> 'c'             committed log id
//!   <range_id:8> 'l' <index:8>   log entry at index          (big-endian: index order)
//!   <range_id:8> 'p'             last purged log id
//!   <range_id:8> 'v'             vote
//! ```
//!
//! A range's log is one contiguous span, so truncation and purge are single range deletes and
//! finding the last entry is one reverse seek.

/// The key of a range's vote.
pub fn vote_key(range_id: u64) -> Vec<u8> {
    state_key(range_id, b'v')
}

/// The key of a range's last purged log id.
pub fn purged_key(range_id: u64) -> Vec<u8> {
    state_key(range_id, b'p')
}

/// The key of a range's committed log id.
pub fn committed_key(range_id: u64) -> Vec<u8> {
    state_key(range_id, b'c')
}

/// The key of the log entry at `index`.
pub fn entry_key(range_id: u64, index: u64) -> Vec<u8> {
    let mut key = state_key(range_id, b'l');
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The first key after every log entry of the range.
pub fn entries_end(range_id: u64) -> Vec<u8> {
    state_key(range_id, b'l' + 1)
}

/// The span of every key of a range (log, vote, log ids): what destroying a replica deletes.
pub fn range_span(range_id: u64) -> (Vec<u8>, Vec<u8>) {
    (range_id.to_be_bytes().to_vec(), (range_id + 1).to_be_bytes().to_vec())
}

/// Decodes the index from an entry key.
pub fn entry_index(key: &[u8]) -> Option<u64> {
    key.get(9..17).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
}

fn state_key(range_id: u64, kind: u8) -> Vec<u8> {
    let mut key = Vec::with_capacity(17);
    key.extend_from_slice(&range_id.to_be_bytes());
    key.push(kind);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_of_a_range_are_contiguous_and_ordered() {
        assert!(entry_key(1, 0) < entry_key(1, 1) && entry_key(1, 255) < entry_key(1, 256));
        assert!(entry_key(1, u64::MAX) < entries_end(1));
        assert!(entries_end(1) <= purged_key(1) && vote_key(1) < entry_key(2, 0));
        assert!(committed_key(1) < entry_key(1, 0));
        assert_eq!(entry_index(&entry_key(7, 42)), Some(42));
        let (start, end) = range_span(1);
        for key in [vote_key(1), purged_key(1), committed_key(1), entry_key(1, u64::MAX)] {
            assert!(start <= key && key < end);
        }
        assert!(entry_key(2, 0) >= end && vote_key(0) < start);
    }
}
