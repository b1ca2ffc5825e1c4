//! Serialization of Raft state stored in the engine (entries, votes, log ids, applied state).
//!
//! `postcard` (serde, compact varints) encodes openraft's own serde types. These bytes are
//! on disk: changing a type's serde shape requires a store format bump.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// Encodes a value.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("encoding into a Vec cannot fail")
}

/// Decodes a value; `what` names it in the error.
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::Decode { what, message: e.to_string() })
}
