//! The IDs in request paths, parsed with the messages the original sends
//! (or, for routes the original does not have, messages of the same kind).

use crate::http::AppError;
use crate::ids::{EntryId, GuestLinkId, IdError, ShareId};

/// Parses an entry ID from a path, with the original's message.
pub(crate) fn parse_entry_id(raw: &str) -> Result<EntryId, AppError> {
    EntryId::parse(raw).map_err(|e| AppError::bad_request(format!("bad entry ID: {e}")))
}

/// Parses a guest-link ID from a path, with the original's wording. The
/// original names guest links in its length message but, by a slip, entries in
/// its character message; clients may match either, so both are kept.
pub(crate) fn parse_guest_link_id(raw: &str) -> Result<GuestLinkId, AppError> {
    GuestLinkId::parse(raw).map_err(|e| {
        let why = match e {
            IdError::Length { id, got, want } => {
                format!("guest link ID ({id}) has invalid length: got {got}, want {want}")
            }
            IdError::Character { id, ch } => {
                format!("entry ID ({id}) contains invalid character: {ch}")
            }
        };
        AppError::bad_request(format!("Invalid guest link ID: {why}"))
    })
}

/// Parses a share ID from a path.
pub(crate) fn parse_share_id(raw: &str) -> Result<ShareId, AppError> {
    ShareId::parse(raw).map_err(|_| AppError::bad_request("This is not a valid share ID."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn ids_are_rejected_with_the_original_wording() {
        let msg = |raw: &str| {
            let resp = parse_guest_link_id(raw).unwrap_err();
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
            format!("{resp:?}")
        };
        assert!(msg("abc").contains("guest link ID (abc) has invalid length: got 3, want 16"));
        assert!(msg("abcdefghijkmnop0").contains("contains invalid character: 0"));
    }
}
