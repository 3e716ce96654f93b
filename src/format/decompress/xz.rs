//! xz and the legacy .lzma ("alone") format, through lzma-rust2's sans-I/O streams.

use super::*;

/// lzma-rust2 reports problems as `io::Error`s; their kind tells our classes apart.
fn lzma_error(name: &'static str, e: std::io::Error) -> Fault {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => truncated(name),
        std::io::ErrorKind::OutOfMemory => {
            Error::unsupported(format!("{name} stream needing more than {} MiB of memory", MEM_LIMIT >> 20)).into()
        }
        std::io::ErrorKind::Unsupported => Error::unsupported(format!("{name} stream: {e}")).into(),
        _ => tampered(name),
    }
}

/// The `process()` shape shared by `XzStream` and `LzmaStream`.
trait Sans {
    fn process(&mut self, input: &[u8], output: &mut [u8], action: lzma_rust2::Action)
        -> lzma_rust2::Result<lzma_rust2::StreamResult>;
}

impl Sans for lzma_rust2::XzStream {
    fn process(&mut self, i: &[u8], o: &mut [u8], a: lzma_rust2::Action) -> lzma_rust2::Result<lzma_rust2::StreamResult> {
        lzma_rust2::XzStream::process(self, i, o, a)
    }
}

impl Sans for lzma_rust2::LzmaStream {
    fn process(&mut self, i: &[u8], o: &mut [u8], a: lzma_rust2::Action) -> lzma_rust2::Result<lzma_rust2::StreamResult> {
        lzma_rust2::LzmaStream::process(self, i, o, a)
    }
}

/// Runs `process()` until `input` is used up and no output is pending; returns whether the
/// stream reached its end and how much of `input` that took.
fn pump<S: Sans>(
    name: &'static str,
    s: &mut S,
    input: &[u8],
    buf: &mut [u8],
    action: lzma_rust2::Action,
    out: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Step<(bool, usize)> {
    let mut pos = 0;
    loop {
        let r = s.process(&input[pos..], buf, action).map_err(|e| lzma_error(name, e))?;
        pos += r.bytes_consumed;
        out(&buf[..r.bytes_produced])?;
        if r.status == lzma_rust2::Status::StreamEnd {
            return Ok((true, pos));
        }
        if r.bytes_consumed == 0 && r.bytes_produced == 0 {
            return Ok((false, pos));
        }
    }
}

/// xz: `XzStream` checks every block's CRC32/CRC64/SHA-256 and the index. We take one stream
/// at a time and handle what lies between streams ourselves (zero padding in multiples of four
/// bytes, then the next stream's magic): only that way can "trailing data" be told apart from a
/// damaged stream, and a cut inside the next stream's header from bad padding.
pub(super) struct Xz {
    stream: Option<lzma_rust2::XzStream>,
    streams: u64,
    padding: u64,
    buf: Vec<u8>,
}

impl Xz {
    pub(super) fn new() -> Self {
        Xz { stream: None, streams: 0, padding: 0, buf: vec![0; OUT_PIECE] }
    }
}

impl Codec for Xz {
    fn feed(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<()> {
        let mut pos = 0;
        while pos < input.len() {
            let Some(stream) = &mut self.stream else {
                if self.streams > 0 && input[pos] == 0 {
                    self.padding += 1;
                    pos += 1;
                    continue;
                }
                if self.padding % 4 != 0 {
                    return Err(tampered("xz"));
                }
                if self.streams > 0 && input[pos] != 0xFD {
                    return Err(trailing("xz"));
                }
                self.stream = Some(lzma_rust2::XzStream::new_mem_limit(false, (MEM_LIMIT >> 10) as u32));
                self.padding = 0;
                continue;
            };
            let (end, used) = pump("xz", stream, &input[pos..], &mut self.buf, lzma_rust2::Action::Run, out)?;
            pos += used;
            if end {
                self.stream = None;
                self.streams += 1;
            } else if pos < input.len() {
                // It neither took the bytes nor failed on them.
                return Err(tampered("xz"));
            }
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<()> {
        // A stream ends with its footer, which `feed` has seen if it was there.
        if self.stream.is_some() || self.streams == 0 {
            return Err(truncated("xz"));
        }
        if self.padding % 4 != 0 {
            return Err(tampered("xz"));
        }
        Ok(())
    }
}

/// The legacy .lzma format: a 13-byte header, then one LZMA1 stream, usually ended by an end
/// marker (xz --format=lzma never knows the size up front). It has no checksum and is never
/// concatenated, so anything after the end is trailing data.
pub(super) struct Lzma {
    stream: lzma_rust2::LzmaStream,
    done: bool,
    buf: Vec<u8>,
}

impl Lzma {
    pub(super) fn new() -> Self {
        Lzma {
            stream: lzma_rust2::LzmaStream::new_mem_limit((MEM_LIMIT >> 10) as u32, None),
            done: false,
            buf: vec![0; OUT_PIECE],
        }
    }

    /// At the end marker: bytes the decoder was given but did not need are trailing data.
    fn ended(&mut self, used: usize, input_len: usize) -> Step<()> {
        self.done = true;
        if used < input_len || !self.stream.unused_input().is_empty() {
            return Err(trailing("lzma"));
        }
        Ok(())
    }
}

impl Codec for Lzma {
    fn feed(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<()> {
        if self.done {
            return if input.is_empty() { Ok(()) } else { Err(trailing("lzma")) };
        }
        let (end, used) = pump("lzma", &mut self.stream, input, &mut self.buf, lzma_rust2::Action::Run, out)?;
        if end {
            return self.ended(used, input.len());
        }
        if used < input.len() {
            return Err(tampered("lzma"));
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Step<()> {
        // Not `Action::Finish`: with it lzma-rust2 reads missing final bytes as zeros, so a
        // stream cut just before a final 0x00 would pass as whole (found by fuzzing; real
        // `lzma -d` calls it "Unexpected end of input"). The end marker must have been seen.
        let _ = out;
        if self.done { Ok(()) } else { Err(truncated("lzma")) }
    }
}
