//! Downloads: a file at `/-{id}` ([`mod@file`]) and a share's ZIP at
//! `/s/{id}/zip` ([`zip`]), streamed from the store by the chunk pump
//! ([`pump`]); a limited download is counted by [`counted`].

pub(crate) mod counted;
pub(crate) mod file;
pub(crate) mod pump;
pub(crate) mod zip;
