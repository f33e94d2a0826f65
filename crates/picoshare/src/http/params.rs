//! The IDs in request paths, parsed with the messages the original sends
//! (or, for routes the original does not have, messages of the same kind),
//! and the look-up of the file an entry ID names, shared by downloads and
//! the pages about one file.

use crate::http::{AppError, AppState};
use crate::ids::{EntryId, GuestLinkId, IdError, ShareId};
use crate::store::model::Entry;

/// The value of field `key` in a form-encoded body
/// (`application/x-www-form-urlencoded`: `+` is a space, `%XX` a byte, read as
/// UTF-8 with bad sequences replaced), if the body has it.
pub(crate) fn form_value(form: &[u8], key: &str) -> Option<String> {
    form.split(|b| *b == b'&')
        .filter_map(|kv| {
            let mut it = kv.splitn(2, |b| *b == b'=');
            Some((it.next()?, it.next().unwrap_or_default()))
        })
        .find(|(k, _)| *k == key.as_bytes())
        .map(|(_, v)| {
            let plus_decoded: Vec<u8> = v
                .iter()
                .map(|b| if *b == b'+' { b' ' } else { *b })
                .collect();
            percent_encoding::percent_decode(&plus_decoded)
                .decode_utf8_lossy()
                .into_owned()
        })
}

/// Parses an entry ID from a path, with the original's message.
pub(crate) fn parse_entry_id(raw: &str) -> Result<EntryId, AppError> {
    EntryId::parse(raw).map_err(|e| AppError::bad_request(format!("bad entry ID: {e}")))
}

/// The entry `raw` names: 400 for a malformed ID, 404 for an unknown one.
/// Expiry is the caller's to check (the owner's pages show expired files).
pub(crate) async fn entry_named(state: &AppState, raw: &str) -> Result<(EntryId, Entry), AppError> {
    let id = parse_entry_id(raw)?;
    let entry = entry_by_id(state, &id).await?;
    Ok((id, entry))
}

/// Entry `id`, read afresh: 404 for an unknown one.
pub(crate) async fn entry_by_id(state: &AppState, id: &EntryId) -> Result<Entry, AppError> {
    state
        .store
        .entry(id)
        .await
        .map_err(|e| AppError::store("failed to read the entry", e))?
        .ok_or_else(|| AppError::not_found("entry not found"))
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
    fn form_values_are_decoded() {
        let form = b"next=%2Ffiles%3Fa%3D1&passphrase=a+b%26c%C3%A9&empty=";
        assert_eq!(form_value(form, "passphrase").as_deref(), Some("a b&cé"));
        assert_eq!(form_value(form, "next").as_deref(), Some("/files?a=1"));
        assert_eq!(form_value(form, "empty").as_deref(), Some(""));
        assert_eq!(form_value(form, "missing"), None);
    }

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
