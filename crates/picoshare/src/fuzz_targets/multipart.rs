//! The `multipart` target: upload bodies read as `POST /api/entry` reads
//! them, whole and cut into network reads.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use super::filename::check_disposition;
use crate::http::uploads::multipart::{field_role, part_file_name, FieldRole, NOTE_READ_LIMIT};
use crate::validate;

/// What an upload body yields when read the way `POST /api/entry` reads it.
#[derive(Debug, PartialEq, Eq)]
struct Form {
    filename: String,
    content_type: String,
    file: Vec<u8>,
    note: Option<String>,
}

/// Multipart upload bodies, read with the upload's parser (multer), its field
/// rules ([`field_role`]) and its filename and note validation. Input: one
/// byte choosing how the body is cut into network reads, the request's
/// `Content-Type` up to the first newline, then the body.
///
/// Properties: the outcome does not depend on how the body is cut into reads;
/// an accepted file has a valid base name (no `/`, no control characters, at
/// most 255 bytes) whose `Content-Disposition` is a safe header value; an
/// accepted note passes the note rules.
pub fn multipart(data: &[u8]) {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
        return;
    };
    let Ok(content_type) = std::str::from_utf8(&rest[..newline]) else {
        return;
    };
    let body = &rest[newline + 1..];
    // The upload refuses a Content-Type without a boundary with a 400.
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return;
    };
    let whole = read_form(&boundary, vec![Bytes::copy_from_slice(body)]);
    let piece = usize::from(cut % 64) + 1;
    let pieces = body.chunks(piece).map(Bytes::copy_from_slice).collect();
    let split = read_form(&boundary, pieces);
    assert_eq!(
        whole.as_ref().ok(),
        split.as_ref().ok(),
        "reading in {piece}-byte pieces changed the outcome: {whole:?} vs {split:?}"
    );
    let Ok(form) = whole else {
        return;
    };
    assert_eq!(validate::filename(&form.filename), Ok(&*form.filename));
    assert!(!form.filename.contains('/'), "{:?}", form.filename);
    assert!(!form.file.is_empty());
    check_disposition(&form.filename);
    if let Some(note) = &form.note {
        assert!(note.len() <= validate::MAX_NOTE_BYTES);
    }
}

/// Reads a multipart body the way `http::uploads::multipart::receive` does, with the
/// file's bytes kept in memory instead of a store sink.
fn read_form(boundary: &str, chunks: Vec<Bytes>) -> Result<Form, String> {
    let stream = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
    let mut multipart = multer::Multipart::new(stream, boundary);
    complete(async move {
        let mut file: Option<(String, String, Vec<u8>)> = None;
        let mut note: Option<String> = None;
        let broken = |e: multer::Error| format!("could not read the multipart body: {e}");
        while let Some(mut field) = multipart.next_field().await.map_err(broken)? {
            match field_role(
                field.name(),
                part_file_name(field.headers(), field.file_name()).as_deref(),
                file.is_some(),
                note.is_some(),
            )? {
                FieldRole::File(name) => {
                    let ctype = field
                        .headers()
                        .get(axum::http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let mut bytes = Vec::new();
                    while let Some(chunk) = field.chunk().await.map_err(broken)? {
                        bytes.extend_from_slice(&chunk);
                    }
                    file = Some((name, ctype, bytes));
                }
                FieldRole::Note => {
                    let mut buf = Vec::new();
                    while let Some(chunk) = field.chunk().await.map_err(broken)? {
                        buf.extend_from_slice(&chunk);
                        if buf.len() > NOTE_READ_LIMIT {
                            return Err("note is too long".to_owned());
                        }
                    }
                    note = Some(String::from_utf8_lossy(&buf).into_owned());
                }
                FieldRole::MaxDownloads | FieldRole::Password | FieldRole::Skip => {
                    while field.chunk().await.map_err(broken)?.is_some() {}
                }
            }
        }
        let (filename, content_type, file) = file.ok_or("http: no such file")?;
        if file.is_empty() {
            return Err("file must be non-empty".into());
        }
        let note = validate::note(note.as_deref().unwrap_or(""))?;
        Ok(Form {
            filename,
            content_type,
            file,
            note,
        })
    })
}

/// Runs a future whose input is all in memory to completion. Nothing it
/// waits on can be pending for long, so polling it again is all it needs; a
/// future that never finishes is a parser stuck on a complete body.
fn complete<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..100_000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("the multipart parser stalled on a body that is all there");
}
