//! Range requests and conditional requests on a file that spans several
//! 320 KiB chunks.

use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, RANGE,
};
use reqwest::Response;

use crate::helpers::*;

/// 1 MiB + 17 bytes: four chunks, the last one short.
const SIZE: usize = 1024 * 1024 + 17;

struct Fixture {
    server: TestServer,
    id: String,
    data: Vec<u8>,
}

async fn fixture() -> Fixture {
    let server = TestServer::start().await;
    let c = server.admin_client().await;
    let data = random_bytes(SIZE, 42);
    let id = server
        .upload(&c, "ranged.bin", &data, "application/x-ranged", None, None)
        .await;
    Fixture { server, id, data }
}

impl Fixture {
    async fn get(&self, headers: &[(HeaderName, &str)]) -> Response {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        plain_client()
            .get(self.server.url(&format!("/-{}", self.id)))
            .headers(map)
            .send()
            .await
            .unwrap()
    }

    /// Asserts a single-range 206 for `range` covering `start..=end`.
    async fn assert_partial(&self, range: &str, start: usize, end: usize) {
        let resp = self.get(&[(RANGE, range)]).await;
        assert_eq!(resp.status().as_u16(), 206, "Range: {range}");
        let h = resp.headers().clone();
        assert_eq!(
            header_str(&h, "content-range"),
            format!("bytes {start}-{end}/{SIZE}"),
            "Content-Range for {range}"
        );
        assert_eq!(
            header_str(&h, "content-length"),
            (end - start + 1).to_string(),
            "Content-Length for {range}"
        );
        let body = resp.bytes().await.unwrap();
        assert_eq!(body.len(), end - start + 1, "body length for {range}");
        assert!(
            body.as_ref() == &self.data[start..=end],
            "wrong bytes for {range}"
        );
    }

    async fn assert_full(&self, resp: Response, why: &str) {
        assert_eq!(resp.status().as_u16(), 200, "{why}");
        assert!(
            resp.headers().get("content-range").is_none(),
            "{why}: unexpected Content-Range"
        );
        assert_eq!(
            header_str(resp.headers(), "content-length"),
            SIZE.to_string(),
            "{why}"
        );
        let body = resp.bytes().await.unwrap();
        assert!(
            body.as_ref() == &self.data[..],
            "{why}: body is not the whole file"
        );
    }

    async fn etag_and_last_modified(&self) -> (String, String) {
        let resp = self.get(&[]).await;
        let h = resp.headers();
        (header_str(h, "etag"), header_str(h, "last-modified"))
    }
}

/// `bytes=0-0` is a 206 with exactly the first byte.
#[tokio::test]
async fn first_byte() {
    fixture().await.assert_partial("bytes=0-0", 0, 0).await;
}

/// `bytes=-1` is a 206 with exactly the last byte.
#[tokio::test]
async fn last_byte() {
    fixture()
        .await
        .assert_partial("bytes=-1", SIZE - 1, SIZE - 1)
        .await;
}

/// A range that crosses the 327,680-byte chunk boundary (and one crossing
/// two boundaries) returns the right bytes.
#[tokio::test]
async fn range_across_chunk_boundaries() {
    let f = fixture().await;
    f.assert_partial("bytes=327000-328000", 327_000, 328_000)
        .await;
    f.assert_partial("bytes=327679-655360", 327_679, 655_360)
        .await;
    f.assert_partial("bytes=1048570-1048592", 1_048_570, SIZE - 1)
        .await;
}

/// An open-ended range `bytes=1000-` runs to the end of the file, and a
/// suffix longer than the file is the whole file as a 206.
#[tokio::test]
async fn open_ended_ranges() {
    let f = fixture().await;
    f.assert_partial("bytes=1000-", 1000, SIZE - 1).await;
    f.assert_partial("bytes=1048000-99999999", 1_048_000, SIZE - 1)
        .await;
}

/// `bytes=0-9,500000-500009` is a 206 `multipart/byteranges` whose parts, in
/// order, carry the right Content-Range and bytes.
#[tokio::test]
async fn multiple_ranges() {
    let f = fixture().await;
    let resp = f.get(&[(RANGE, "bytes=0-9,500000-500009")]).await;
    assert_eq!(resp.status().as_u16(), 206);
    let content_type = header_str(resp.headers(), "content-type");
    assert!(
        content_type.starts_with("multipart/byteranges; boundary="),
        "Content-Type {content_type:?}"
    );
    let declared = header_str(resp.headers(), "content-length");
    let body = resp.bytes().await.unwrap();
    if !declared.is_empty() {
        assert_eq!(
            declared,
            body.len().to_string(),
            "Content-Length of the multipart body"
        );
    }
    let parts = parse_byteranges(&content_type, &body)
        .unwrap_or_else(|e| panic!("multipart/byteranges: {e}"));
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert_eq!(parts[0].content_range, format!("bytes 0-9/{SIZE}"));
    assert_eq!(parts[0].data, &f.data[0..10]);
    assert_eq!(
        parts[1].content_range,
        format!("bytes 500000-500009/{SIZE}")
    );
    assert_eq!(parts[1].data, &f.data[500_000..500_010]);
}

/// A range starting at the file size is 416 with `Content-Range: bytes */N`.
#[tokio::test]
async fn unsatisfiable_range_is_416() {
    let f = fixture().await;
    let resp = f.get(&[(RANGE, &format!("bytes={SIZE}-"))]).await;
    assert_eq!(resp.status().as_u16(), 416);
    assert_eq!(
        header_str(resp.headers(), "content-range"),
        format!("bytes */{SIZE}")
    );
}

/// A Range header that is not a byte range (`bytes=abc`) is ignored: 200 with
/// the full body.
#[tokio::test]
async fn garbage_range_is_ignored() {
    let f = fixture().await;
    let resp = f.get(&[(RANGE, "bytes=abc")]).await;
    f.assert_full(resp, "Range: bytes=abc").await;
}

/// `If-None-Match` with the current ETag is 304 with no body.
#[tokio::test]
async fn if_none_match_is_304() {
    let f = fixture().await;
    let (etag, _) = f.etag_and_last_modified().await;
    assert!(!etag.is_empty(), "no ETag");
    let resp = f.get(&[(IF_NONE_MATCH, &etag)]).await;
    assert_eq!(resp.status().as_u16(), 304);
    assert!(resp.bytes().await.unwrap().is_empty());
    let resp = f.get(&[(IF_NONE_MATCH, "\"some-other-etag\"")]).await;
    f.assert_full(resp, "If-None-Match with another ETag").await;
}

/// `If-Modified-Since` equal to `Last-Modified` is 304.
#[tokio::test]
async fn if_modified_since_is_304() {
    let f = fixture().await;
    let (_, last_modified) = f.etag_and_last_modified().await;
    assert!(!last_modified.is_empty(), "no Last-Modified");
    let resp = f.get(&[(IF_MODIFIED_SINCE, &last_modified)]).await;
    assert_eq!(resp.status().as_u16(), 304);
    let resp = f
        .get(&[(IF_MODIFIED_SINCE, "Sat, 01 Jan 2000 00:00:00 GMT")])
        .await;
    f.assert_full(resp, "If-Modified-Since long before the upload")
        .await;
}

/// `If-Range` with a different ETag turns a Range request into a 200 with
/// the whole file.
#[tokio::test]
async fn if_range_with_wrong_etag_sends_everything() {
    let f = fixture().await;
    let resp = f
        .get(&[(RANGE, "bytes=0-99"), (IF_RANGE, "\"not-the-etag\"")])
        .await;
    f.assert_full(resp, "If-Range with a wrong ETag").await;
}

/// `If-Range` with the current (strong) ETag keeps the Range: 206.
#[tokio::test]
async fn if_range_with_right_etag_sends_the_range() {
    let f = fixture().await;
    let (etag, _) = f.etag_and_last_modified().await;
    assert!(
        !etag.starts_with("W/"),
        "If-Range needs a strong ETag, got {etag:?}"
    );
    let resp = f.get(&[(RANGE, "bytes=100-199"), (IF_RANGE, &etag)]).await;
    assert_eq!(resp.status().as_u16(), 206, "If-Range: {etag}");
    assert_eq!(
        header_str(resp.headers(), "content-range"),
        format!("bytes 100-199/{SIZE}")
    );
    assert!(resp.bytes().await.unwrap().as_ref() == &f.data[100..200]);
}
