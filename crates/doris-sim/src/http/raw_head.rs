//! What a request's head said before the HTTP library normalised it.
//!
//! The BE refuses a load that sends `Content-Length` together with `Transfer-Encoding: chunked`
//! (`[INTERNAL_ERROR]please do not set both content_length and transfer-encoding`, apache/doris
//! `be/src/http/action/stream_load.cpp` `_on_header`). hyper follows RFC 9112 §6.3 and removes `Content-Length` from
//! such a request before a handler sees it, so the connection's bytes are watched on their way into hyper: a small
//! HTTP/1.1 request framer finds each request head, notes what the handler needs, and skips the body by its
//! framing (length or chunks) to find the next head. hyper serves a connection's requests in order, so the handler
//! of the n-th request takes the n-th note.
//!
//! The framer only observes; hyper still parses and answers every byte. If the framer cannot follow the stream (a
//! head it cannot parse, a bad chunk size), it stops taking notes and the handlers see none, which is the behaviour
//! without this module.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Facts of one request's raw head, put into the request's extensions for the handler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawHead {
    /// The head had a non-empty `Content-Length` line, whether or not hyper kept it.
    pub content_length: bool,
}

/// Longest head the framer buffers; hyper refuses longer ones anyway (its default limit is smaller).
const MAX_HEAD_BYTES: usize = 1 << 20;
/// Most header lines the framer parses in one head.
const MAX_HEADERS: usize = 256;

#[derive(Debug)]
enum Framing {
    /// Collecting a head until its empty line.
    Head,
    /// Skipping this many body bytes.
    Body(u64),
    /// Collecting a chunk-size line.
    ChunkSize,
    /// Skipping this many chunk bytes, then the CRLF after them.
    ChunkData(u64),
    /// Collecting trailer lines until the empty one.
    Trailers,
    /// Lost track of the framing; take no more notes.
    Lost,
}

/// Per-connection framer fed with every byte read from the socket; shared with the service that takes the notes.
#[derive(Clone, Debug, Default)]
pub struct HeadRecorder {
    inner: Arc<Mutex<Recorder>>,
}

#[derive(Debug)]
struct Recorder {
    state: Framing,
    /// Bytes of the head, chunk-size line or trailer section being collected.
    pending: Vec<u8>,
    notes: VecDeque<RawHead>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            state: Framing::Head,
            pending: Vec::new(),
            notes: VecDeque::new(),
        }
    }
}

impl HeadRecorder {
    /// Observes bytes as they are handed to hyper.
    pub fn feed(&self, bytes: &[u8]) {
        if let Ok(mut r) = self.inner.lock() {
            r.feed(bytes);
        }
    }

    /// The note of the oldest request not yet taken.
    pub fn take(&self) -> Option<RawHead> {
        self.inner.lock().ok().and_then(|mut r| r.notes.pop_front())
    }
}

impl Recorder {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.state {
                Framing::Lost => return,
                Framing::Body(n) | Framing::ChunkData(n) => {
                    let take = usize::try_from(n).unwrap_or(usize::MAX).min(bytes.len());
                    bytes = &bytes[take..];
                    let left = n - take as u64;
                    self.state = match (&self.state, left) {
                        (Framing::Body(_), 0) => Framing::Head,
                        (Framing::Body(_), _) => Framing::Body(left),
                        // The CRLF closing a chunk's data is counted into its length (see `chunk_size`).
                        (_, 0) => Framing::ChunkSize,
                        (_, _) => Framing::ChunkData(left),
                    };
                }
                Framing::Head | Framing::ChunkSize | Framing::Trailers => {
                    // Collect up to the end of the current line (or of the head).
                    let end = memchr::memchr(b'\n', bytes).map_or(bytes.len(), |i| i + 1);
                    self.pending.extend_from_slice(&bytes[..end]);
                    bytes = &bytes[end..];
                    if self.pending.len() > MAX_HEAD_BYTES {
                        self.state = Framing::Lost;
                        return;
                    }
                    if self.pending.last() == Some(&b'\n') {
                        self.line_done();
                    }
                }
            }
        }
    }

    /// `pending` ends with a newline: see whether it completes what is being collected.
    fn line_done(&mut self) {
        match self.state {
            Framing::Head => {
                // Empty lines before a request line are ignored (RFC 9112 §2.2), as hyper does.
                if self.pending == b"\r\n" || self.pending == b"\n" {
                    self.pending.clear();
                    return;
                }
                if !(self.pending.ends_with(b"\r\n\r\n") || self.pending.ends_with(b"\n\n")) {
                    return;
                }
                let head = std::mem::take(&mut self.pending);
                self.state = self.head(&head);
            }
            Framing::ChunkSize => {
                let line = std::mem::take(&mut self.pending);
                self.state = match httparse::parse_chunk_size(&line) {
                    Ok(httparse::Status::Complete((_, 0))) => Framing::Trailers,
                    // The chunk's data, then its CRLF.
                    Ok(httparse::Status::Complete((_, n))) => {
                        n.checked_add(2).map_or(Framing::Lost, Framing::ChunkData)
                    }
                    _ => Framing::Lost,
                };
            }
            Framing::Trailers => {
                // An empty line ends the trailer section (it is often the only line).
                let p = &self.pending;
                if p == b"\r\n" || p == b"\n" || p.ends_with(b"\r\n\r\n") || p.ends_with(b"\n\n") {
                    self.pending.clear();
                    self.state = Framing::Head;
                }
            }
            Framing::Body(_) | Framing::ChunkData(_) | Framing::Lost => {}
        }
    }

    /// Notes a complete head and returns how its body is framed.
    fn head(&mut self, head: &[u8]) -> Framing {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return Framing::Lost,
        }
        let mut length: Option<u64> = None;
        let mut content_length = false;
        let mut chunked = false;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                let v = h.value.trim_ascii();
                content_length |= !v.is_empty();
                length = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok());
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = h
                    .value
                    .split(|b| *b == b',')
                    .next_back()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
        }
        self.notes.push_back(RawHead { content_length });
        if chunked {
            Framing::ChunkSize
        } else {
            match length {
                Some(0) | None => Framing::Head,
                Some(n) => Framing::Body(n),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notes(input: &[&[u8]]) -> Vec<RawHead> {
        let r = HeadRecorder::default();
        for part in input {
            r.feed(part);
        }
        std::iter::from_fn(|| r.take()).collect()
    }

    const CL: RawHead = RawHead {
        content_length: true,
    };
    const NO_CL: RawHead = RawHead {
        content_length: false,
    };

    #[test]
    fn follows_length_and_chunked_bodies_across_reads() {
        let stream: &[u8] = b"PUT /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nab\r\n\r\
            PUT /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nPUT\r\n0\r\nT: 1\r\n\r\n\
            PUT /c HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n\r\n\r\n0\r\n\r\n\
            GET /d HTTP/1.1\r\n\r\n";
        let want = vec![CL, NO_CL, CL, NO_CL];
        assert_eq!(notes(&[stream]), want);
        // The same bytes one at a time.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(notes(&bytes), want);
    }

    #[test]
    fn an_unparsable_head_stops_the_notes() {
        assert_eq!(
            notes(&[b"PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /b HTTP/1.1\r\n\r\n"]),
            vec![NO_CL]
        );
        assert_eq!(
            notes(&[b"\x00\x01 nonsense\r\n\r\nGET / HTTP/1.1\r\n\r\n"]),
            vec![]
        );
    }
}
