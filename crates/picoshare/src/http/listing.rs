//! The query parameters of the long lists, read once for the pages and the
//! JSON API: the file list (`/files`, `GET /api/entries`) and a file's
//! download history (`/files/{id}/downloads`, `GET
//! /api/entry/{id}/downloads`).
//!
//! - `sort` (`uploaded`, `filename`, `size`, `expires`) and `order` (`asc`,
//!   `desc`; by default newest, largest or last first for `uploaded`, and
//!   ascending for the others), `q` (a filter on the filename);
//! - pages: `page` (from 1, [`PAGE_SIZE`] rows each);
//! - the API: `limit` (1 to [`MAX_LIMIT`]) and `offset`; without `limit` the
//!   whole list, as before these parameters existed. The number of rows in
//!   all goes in the `X-Total-Count` header.
//!
//! Anything else in the query is ignored (the history's `unique=true` is
//! read by its handlers); a value that cannot be read is a 400 that says
//! which and why.

use axum::http::{HeaderName, HeaderValue};

use crate::http::AppError;
use crate::store::model::{DownloadQuery, EntryQuery, EntrySort};

/// Rows on one page of the file list and of a download history.
pub(crate) const PAGE_SIZE: u64 = 100;

/// The most rows one API request may ask for.
pub(crate) const MAX_LIMIT: u64 = 1000;

/// The header that carries the number of rows in all.
pub(crate) static TOTAL_COUNT: HeaderName = HeaderName::from_static("x-total-count");

/// The longest filter accepted, in bytes.
const MAX_FILTER: usize = 1000;

fn value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn number(
    query: &[(String, String)],
    key: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, AppError> {
    let Some(raw) = value(query, key) else {
        return Ok(None);
    };
    match raw.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(AppError::bad_request(format!(
            "{key} must be a whole number from {min} to {max}, not {raw:?}"
        ))),
    }
}

/// The sort, order and filter of a file-list request.
pub(crate) fn entry_query(query: &[(String, String)]) -> Result<EntryQuery, AppError> {
    let sort = match value(query, "sort") {
        None | Some("") => EntrySort::Uploaded,
        Some(raw) => EntrySort::parse(raw).ok_or_else(|| {
            AppError::bad_request(format!(
                "sort must be uploaded, filename, size or expires, not {raw:?}"
            ))
        })?,
    };
    let descending = match value(query, "order") {
        None | Some("") => matches!(sort, EntrySort::Uploaded),
        Some("desc") => true,
        Some("asc") => false,
        Some(raw) => {
            return Err(AppError::bad_request(format!(
                "order must be asc or desc, not {raw:?}"
            )))
        }
    };
    let filter = value(query, "q").unwrap_or("").trim().to_owned();
    if filter.len() > MAX_FILTER {
        return Err(AppError::bad_request(format!(
            "q must be at most {MAX_FILTER} bytes"
        )));
    }
    Ok(EntryQuery {
        sort,
        descending,
        filter,
        offset: 0,
        limit: None,
    })
}

/// The window an API request asks for: `(offset, limit)`.
pub(crate) fn api_window(query: &[(String, String)]) -> Result<(u64, Option<u64>), AppError> {
    let limit = number(query, "limit", 1, MAX_LIMIT)?;
    let offset = number(query, "offset", 0, i64::MAX as u64)?.unwrap_or(0);
    Ok((offset, limit))
}

/// The page a page request asks for, from 1.
pub(crate) fn page_number(query: &[(String, String)]) -> Result<u64, AppError> {
    Ok(number(query, "page", 1, i64::MAX as u64 / PAGE_SIZE)?.unwrap_or(1))
}

/// The file-list query of page `page`.
pub(crate) fn page_window(mut q: EntryQuery, page: u64) -> EntryQuery {
    q.offset = (page - 1) * PAGE_SIZE;
    q.limit = Some(PAGE_SIZE);
    q
}

/// Whether a history request asks for unique addresses (only the exact
/// value `true` does, as the original's page checks it).
pub(crate) fn unique(query: &[(String, String)]) -> bool {
    value(query, "unique") == Some("true")
}

/// The history query of page `page`.
pub(crate) fn history_page(query: &[(String, String)], page: u64) -> DownloadQuery {
    DownloadQuery {
        unique: unique(query),
        offset: (page - 1) * PAGE_SIZE,
        limit: Some(PAGE_SIZE),
    }
}

/// The number of pages `total` rows fill (at least one).
pub(crate) fn page_count(total: u64) -> u64 {
    total.div_ceil(PAGE_SIZE).max(1)
}

/// The `X-Total-Count` value.
pub(crate) fn total_header(total: u64) -> HeaderValue {
    HeaderValue::from(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn list_parameters_have_defaults_and_clear_refusals() {
        let d = entry_query(&q(&[])).unwrap();
        assert_eq!(d, EntryQuery::default());
        let s = entry_query(&q(&[("sort", "size"), ("q", " Cat ")])).unwrap();
        assert_eq!(
            (s.sort, s.descending, s.filter.as_str()),
            (EntrySort::Size, false, "Cat")
        );
        let s = entry_query(&q(&[("sort", "filename"), ("order", "desc")])).unwrap();
        assert_eq!((s.sort, s.descending), (EntrySort::Filename, true));
        let msg = |pairs: &[(&str, &str)]| {
            let e = entry_query(&q(pairs))
                .and_then(|_| api_window(&q(pairs)))
                .and_then(|_| page_number(&q(pairs)))
                .unwrap_err();
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
            format!("{e:?}")
        };
        assert!(msg(&[("sort", "colour")]).contains("sort must be"));
        assert!(msg(&[("order", "up")]).contains("order must be asc or desc"));
        assert!(msg(&[("limit", "0")]).contains("limit must be a whole number from 1 to 1000"));
        assert!(msg(&[("limit", "1001")]).contains("limit"));
        assert!(msg(&[("offset", "-1")]).contains("offset"));
        assert!(msg(&[("page", "0")]).contains("page must be"));
        assert!(msg(&[("page", "x")]).contains("page must be"));
        assert_eq!(api_window(&q(&[])).unwrap(), (0, None));
        assert_eq!(
            api_window(&q(&[("limit", "10"), ("offset", "20")])).unwrap(),
            (20, Some(10))
        );
        assert_eq!(page_number(&q(&[("page", "3")])).unwrap(), 3);
        assert_eq!(page_window(EntryQuery::default(), 3).offset, 200);
        assert_eq!((page_count(0), page_count(100), page_count(101)), (1, 1, 2));
    }
}
