//! The push pipeline: one stored file restored from its verified chunk plaintexts, pushed in
//! order: decompress → inner tar (checked against what the outer name promised) → sink.
//! Push-based, so that the page's coordinator (which never blocks) and the CLI share it.
//! Salvage mode keeps going past lost chunks where the stream allows and reports the ranges.

use crate::error::{Check, Cut, Error, Result, TarFault};
use crate::format::chunks::{FileKind, StoredFile};
use crate::format::container;
use crate::format::decompress::{self, Compression, Decoder};
use crate::format::inner_tar::{Entry, InnerTar, Kind, Visitor};
use crate::output::sink::VolumeSink;

/// The first chunk index after `missing[p]` that is not missing. `missing` is ascending and
/// unique, so `missing[j] - j` never decreases and is constant along a run: binary search finds
/// the run's end (a long run costs log n per chunk, not n).
fn next_present(missing: &[usize], p: usize) -> usize {
    let key = missing[p] - p;
    let (mut lo, mut hi) = (p, missing.len());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if missing[mid] - mid == key {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    missing[lo] + 1
}

/// What a restored file turned out to be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileReport {
    /// Real size (a sparse image's full length; for a tree, the bytes of its files).
    pub size: u64,
    /// Bytes actually stored (data runs).
    pub stored: u64,
    /// Decompressed bytes of the inner tar stream.
    pub stream: u64,
    /// The file turned out to be a folder (only its checks ran).
    pub tree: bool,
}

/// Where one file's restored bytes go.
pub enum Target<'a> {
    /// A single member (volume or small file): `set_len(real size)`, then data runs.
    Volume(Box<dyn VolumeSink + 'a>),
    /// The decompressed inner tar stream itself (dom0 home as one `.tar`), still fully checked.
    Raw(Box<dyn VolumeSink + 'a>),
    /// A tree: every entry of dom0's home, paths already checked to stay under the home.
    Tree(Box<dyn Visitor + 'a>),
    /// Decode and check everything, keep nothing.
    Verify,
}

impl<T: VolumeSink + ?Sized> VolumeSink for &mut T {
    fn set_len(&mut self, len: u64) -> Result<()> {
        (**self).set_len(len)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        (**self).write_at(offset, data)
    }
}

impl<V: Visitor + ?Sized> Visitor for &mut V {
    fn entry(&mut self, entry: &Entry) -> Result<()> {
        (**self).entry(entry)
    }
    fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        (**self).data(offset, bytes)
    }
    fn end_entry(&mut self) -> Result<()> {
        (**self).end_entry()
    }
}

/// Checks what the inner tar holds against what the outer name promised.
enum Member_<'a> {
    /// Exactly one regular file named `expect`.
    Single { expect: String, sink: Option<Box<dyn VolumeSink + 'a>>, seen: bool },
    /// Entries under `prefix` only.
    Tree { prefix: String, inner: Option<Box<dyn Visitor + 'a>> },
}

fn clean(path: &[u8]) -> String {
    let text = String::from_utf8_lossy(path);
    text.strip_prefix("./").unwrap_or(&text).trim_end_matches('/').to_string()
}

fn under(prefix: &str, path: &str) -> bool {
    path == prefix || path.strip_prefix(prefix).is_some_and(|r| r.starts_with('/'))
}

/// What the inner tar holds, checked as it comes.
struct Contents<'a> {
    /// The chunk being read, for errors.
    at: String,
    member: Member_<'a>,
    report: FileReport,
}

impl Visitor for Contents<'_> {
    fn entry(&mut self, entry: &Entry) -> Result<()> {
        let path = clean(&entry.path);
        match &mut self.member {
            Member_::Single { expect, sink, seen } => {
                if *seen {
                    return Err(Error::tampered(&self.at, Check::InnerTar(TarFault::SecondMember(path))));
                }
                if path == *expect && matches!(entry.kind, Kind::Dir | Kind::Symlink) {
                    // A small "file" that is a folder (R4.0's `apps.templates`), or a link
                    // (format 2 did not dereference `icon.png`, a link to the label's icon):
                    // check it as a tree; a single-file sink gets nothing, and the report says so.
                    self.member = Member_::Tree { prefix: path, inner: None };
                    self.report.tree = true;
                    return Ok(());
                }
                if path != *expect || entry.kind != Kind::File {
                    return Err(Error::tampered(&self.at, Check::InnerTar(TarFault::Unexpected { found: path, expected: expect.clone() })));
                }
                *seen = true;
                self.report.size = entry.size;
                self.report.stored = entry.stored;
                if let Some(sink) = sink {
                    sink.set_len(entry.size)?;
                }
                Ok(())
            }
            Member_::Tree { prefix, inner } => {
                if path.split('/').any(|c| c == "..") || path.starts_with('/') || !under(prefix, &path) {
                    return Err(Error::unsafe_path(path, format!("dom0 home entries must stay under {prefix}")));
                }
                if entry.kind == Kind::File {
                    self.report.size += entry.size;
                    self.report.stored += entry.stored;
                }
                match inner {
                    Some(v) => v.entry(entry),
                    None => Ok(()),
                }
            }
        }
    }

    fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        match &mut self.member {
            Member_::Single { sink: Some(sink), .. } => sink.write_at(offset, bytes),
            Member_::Tree { inner: Some(v), .. } => v.data(offset, bytes),
            _ => Ok(()),
        }
    }

    fn end_entry(&mut self) -> Result<()> {
        match &mut self.member {
            Member_::Tree { inner: Some(v), .. } => v.end_entry(),
            _ => Ok(()),
        }
    }
}

/// Restores one stored file from its verified chunks, pushed in order. Push-based so
/// that the page's coordinator (which never blocks) and the CLI share it.
pub struct FileRestore<'a> {
    path: String,
    decoder: Box<dyn Decoder>,
    tar: InnerTar,
    check: Contents<'a>,
    raw: Option<Box<dyn VolumeSink + 'a>>,
    chunks_pushed: usize,
    /// Every chunk of the sequence by index, missing ones included (so messages name them).
    chunk_names: Vec<String>,
    /// Indices of chunks missing from the backup not yet passed ([`StoredFile::missing`]).
    missing: Vec<usize>,
    missing_passed: usize,
    /// Plaintext length of a missing chunk: every chunk but the final one has the size of
    /// chunk .000 (a missing chunk is never final: a present one follows it).
    missing_len: Option<u64>,
    compression: Compression,
    salvage: Option<SalvageState>,
}

/// Salvage mode's bookkeeping (see [`FileRestore::salvage`]).
#[derive(Default)]
struct SalvageState {
    /// Image ranges `[start, end)` whose bytes are unknown, ascending.
    lost: Vec<(u64, u64)>,
    /// The first damage met.
    damage: Option<Error>,
    /// The stream cannot be followed any more: later chunks contribute nothing.
    broken: bool,
}

impl SalvageState {
    fn add(&mut self, start: u64, len: u64) {
        add_range(&mut self.lost, start, start.saturating_add(len));
    }
}

/// Adds `[start, end)` to sorted disjoint ranges, merging what touches or overlaps.
fn add_range(ranges: &mut Vec<(u64, u64)>, start: u64, end: u64) {
    if start >= end {
        return;
    }
    let at = ranges.partition_point(|r| r.1 < start);
    let mut merged = (start, end);
    let mut upto = at;
    while upto < ranges.len() && ranges[upto].0 <= merged.1 {
        merged = (merged.0.min(ranges[upto].0), merged.1.max(ranges[upto].1));
        upto += 1;
    }
    ranges.splice(at..upto, [merged]);
}

/// What a salvage restore recovered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Salvaged {
    pub report: FileReport,
    /// Byte ranges `[start, end)` of the image that could not be restored (left as zeros),
    /// ascending, adjacent ranges merged. Holes the authenticated sparse map declares are
    /// known zeros and are not listed.
    pub lost: Vec<(u64, u64)>,
    /// The first damage met (what the exit code and the message report); `None`: the file
    /// restored cleanly and `lost` is empty.
    pub damage: Option<Error>,
    /// The member's header and sparse map were read, so the image's size and layout are known.
    /// False: nothing could be salvaged (the damage hit the start of the stream).
    pub found: bool,
}

impl<'a> FileRestore<'a> {
    pub fn new(file: &StoredFile, compression: Compression, target: Target<'a>) -> FileRestore<'a> {
        let expect = file.path.clone();
        let (member, raw) = match target {
            Target::Tree(v) => (Member_::Tree { prefix: expect, inner: Some(v) }, None),
            Target::Raw(sink) if file.kind != FileKind::Volume => (Member_::Tree { prefix: expect, inner: None }, Some(sink)),
            Target::Raw(sink) => (Member_::Single { expect, sink: None, seen: false }, Some(sink)),
            Target::Volume(sink) => (Member_::Single { expect, sink: Some(sink), seen: false }, None),
            Target::Verify if file.kind == FileKind::Volume => (Member_::Single { expect, sink: None, seen: false }, None),
            Target::Verify => (Member_::Tree { prefix: expect, inner: None }, None),
        };
        FileRestore {
            path: file.path.clone(),
            decoder: decompress::decoder(compression),
            tar: InnerTar::new(),
            check: Contents { at: String::new(), member, report: FileReport::default() },
            raw,
            chunks_pushed: 0,
            chunk_names: {
                let mut present = file.chunks.iter();
                (0..file.chunks.len() + file.missing.len())
                    .map(|i| {
                        if file.missing.binary_search(&i).is_ok() {
                            format!("{}.{i:03}.enc", file.path)
                        } else {
                            present.next().map_or_else(|| file.path.clone(), |c| c.name.clone())
                        }
                    })
                    .collect()
            },
            missing: file.missing.clone(),
            missing_passed: 0,
            missing_len: match file.chunks.as_slice() {
                [first, _, ..] => first.size.checked_sub(container::OVERHEAD as u64),
                _ => None,
            },
            compression,
            salvage: None,
        }
    }

    /// Salvage mode: damage no longer stops the restore. A lost chunk ([`FileRestore::push_lost`])
    /// or a stream error is recorded; for an uncompressed stream the inner tar goes on after a
    /// lost chunk (its stream position is known, and the sparse map places what follows), for a
    /// compressed one everything after the damage is lost. Only sink errors still fail.
    /// End with [`FileRestore::finish_salvage`].
    pub fn salvage(mut self) -> Self {
        self.salvage = Some(SalvageState::default());
        self
    }

    /// Salvage mode: whether later chunks can still contribute (false once the stream is lost:
    /// the caller may stop reading and decrypting chunks).
    pub fn wants_more(&self) -> bool {
        self.salvage.as_ref().is_none_or(|s| !s.broken)
    }

    /// Image ranges lost so far (salvage mode), ascending and merged.
    pub fn lost_ranges(&self) -> &[(u64, u64)] {
        self.salvage.as_ref().map_or(&[], |s| &s.lost)
    }

    /// Salvage mode: the next chunk is unusable (`why`: its MAC failed, it could not be read).
    /// `plaintext_len` is its plaintext length (member size − 128), known from the outer index;
    /// `None` if unknown. Nothing of the chunk is used. Outside salvage mode returns `why`.
    pub fn push_lost(&mut self, plaintext_len: Option<u64>, why: Error) -> Result<()> {
        self.pass_gap()?;
        self.lose(plaintext_len, why)
    }

    /// Chunks missing from the backup just before the next one ([`StoredFile::missing`]) are
    /// the `tampered` damage a strict listing reports; in salvage mode they are lost like an
    /// unusable chunk, so an uncompressed stream is followed past them.
    fn pass_gap(&mut self) -> Result<()> {
        // `missing` is ascending: passed chunks are counted off its front.
        while self.missing.get(self.missing_passed) == Some(&self.chunks_pushed) {
            let i = self.missing[self.missing_passed];
            let next = next_present(&self.missing, self.missing_passed);
            self.missing_passed += 1;
            let after = self.chunk_names.get(next).cloned().unwrap_or_else(|| self.path.clone());
            let why = Error::tampered(after, Check::ChunkMissing(i));
            self.lose(self.missing_len, why)?;
        }
        Ok(())
    }

    /// The next chunk of the sequence contributes nothing (see [`FileRestore::push_lost`]).
    fn lose(&mut self, plaintext_len: Option<u64>, why: Error) -> Result<()> {
        self.check.at = self.chunk_names.get(self.chunks_pushed).cloned().unwrap_or_else(|| self.path.clone());
        self.chunks_pushed += 1;
        let Some(s) = self.salvage.as_mut() else { return Err(why) };
        s.damage.get_or_insert(why);
        if s.broken {
            return Ok(());
        }
        let (tar, check) = (&mut self.tar, &mut self.check);
        let synced = match plaintext_len {
            Some(len) if self.compression == Compression::None => {
                check.report.stream += len;
                let at = check.at.clone();
                let r = tar.skip(&at, len, check, &mut |o, l| s.add(o, l));
                if let Err(e) = &r {
                    if !e.is_damage() {
                        return r.map(|_| ());
                    }
                }
                r.unwrap_or(false)
            }
            _ => false,
        };
        if !synced {
            s.broken = true;
            tar.give_up(&mut |o, l| s.add(o, l));
        }
        Ok(())
    }

    /// Salvage mode: a stream error is damage, recorded, and the rest of the member is lost;
    /// a sink error (I/O) or a bug still fails.
    fn absorb(&mut self, r: Result<()>) -> Result<()> {
        let (Some(s), Err(e)) = (self.salvage.as_mut(), &r) else { return r };
        if !e.is_damage() {
            return r;
        }
        s.damage.get_or_insert_with(|| e.clone());
        if !s.broken {
            s.broken = true;
            self.tar.give_up(&mut |o, l| s.add(o, l));
        }
        Ok(())
    }

    /// Formats 3 and 2: bytes of the decompressed stream that came from `piece` (a piece yields
    /// its stream in many calls, so the caller names it; there are no chunks to count).
    pub fn push_decoded(&mut self, piece: &str, bytes: &[u8]) -> Result<()> {
        if self.check.at != piece {
            self.check.at = piece.to_string();
        }
        if !self.wants_more() {
            return Ok(());
        }
        let r = self.feed(bytes);
        self.absorb(r)
    }

    /// Feeds the verified plaintext of the next chunk.
    pub fn push(&mut self, plaintext: &[u8]) -> Result<()> {
        self.next_chunk()?;
        self.push_more(plaintext)
    }

    /// Starts the next chunk, whose verified plaintext then comes in one or more
    /// [`FileRestore::push_more`] calls (the page feeds a chunk in slices, so the thread that
    /// does it stays free to schedule KDF lanes in between).
    pub fn next_chunk(&mut self) -> Result<()> {
        self.pass_gap()?;
        self.check.at = self.chunk_names.get(self.chunks_pushed).cloned().unwrap_or_else(|| self.path.clone());
        self.chunks_pushed += 1;
        Ok(())
    }

    /// More plaintext of the chunk [`FileRestore::next_chunk`] started.
    pub fn push_more(&mut self, plaintext: &[u8]) -> Result<()> {
        if !self.wants_more() {
            return Ok(());
        }
        let r = self.feed(plaintext);
        self.absorb(r)
    }

    fn feed(&mut self, plaintext: &[u8]) -> Result<()> {
        let (tar, check, raw) = (&mut self.tar, &mut self.check, &mut self.raw);
        let mut stream = check.report.stream;
        let at = check.at.clone();
        let result = self.decoder.feed(&at, plaintext, &mut |out: &[u8]| take_decoded(out, raw, &mut stream, tar, check));
        check.report.stream = stream;
        result
    }

    /// Salvage mode's end: like [`FileRestore::finish`], but damage (a stream that ends early,
    /// a lost chunk) is reported in [`Salvaged`] rather than failing; only sink errors fail.
    pub fn finish_salvage(mut self) -> Result<Salvaged> {
        if self.salvage.is_none() {
            self.salvage = Some(SalvageState::default());
        }
        if self.wants_more() {
            let r = self.end_stream();
            self.absorb(r)?;
        }
        let found = match &self.check.member {
            Member_::Single { seen, .. } => *seen,
            Member_::Tree { .. } => true,
        };
        let s = self.salvage.take().unwrap_or_default();
        let mut report = self.check.report;
        if !found {
            report.size = 0;
        }
        let lost = if found { s.lost } else { Vec::new() };
        Ok(Salvaged { report, lost, damage: s.damage, found })
    }

    /// Ends the stream: the compressor and the inner tar must both be complete.
    pub fn finish(mut self) -> Result<FileReport> {
        self.end_stream()?;
        Ok(self.check.report)
    }

    fn end_stream(&mut self) -> Result<()> {
        let last = self.chunk_names.last().cloned().unwrap_or_else(|| self.path.clone());
        let (tar, check, raw) = (&mut self.tar, &mut self.check, &mut self.raw);
        let mut stream = check.report.stream;
        self.decoder
            .finish(&last, &mut |out: &[u8]| take_decoded(out, raw, &mut stream, tar, check))?;
        check.report.stream = stream;
        tar.finish(&last, check)?;
        if let Member_::Single { seen: false, expect, .. } = &check.member {
            return Err(Error::truncated(&last, Cut::NoMember(expect.clone())));
        }
        if let Some(raw) = raw.as_mut() {
            raw.set_len(stream)?;
        }
        Ok(())
    }
}

/// Decompressed bytes go to the raw sink (if any) at their stream offset, then to the inner tar.
fn take_decoded<'a>(
    out: &[u8],
    raw: &mut Option<Box<dyn VolumeSink + 'a>>,
    stream: &mut u64,
    tar: &mut InnerTar,
    check: &mut Contents<'a>,
) -> Result<()> {
    if let Some(raw) = raw.as_mut() {
        raw.write_at(*stream, out)?;
    }
    *stream += out.len() as u64;
    let at = check.at.clone();
    tar.feed(&at, out, check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_ranges_are_kept_sorted_and_merged() {
        let mut r = Vec::new();
        for (a, b) in [(10, 20), (30, 40), (20, 25), (0, 5), (5, 10), (35, 50), (60, 60), (24, 31)] {
            add_range(&mut r, a, b);
        }
        assert_eq!(r, vec![(0, 50)]);
        add_range(&mut r, 70, 80);
        add_range(&mut r, 51, 52);
        assert_eq!(r, vec![(0, 50), (51, 52), (70, 80)]);
    }

    #[test]
    fn runs_of_missing_chunks_end_where_a_present_one_follows() {
        let missing = [1, 3, 4, 5, 9];
        let got: Vec<usize> = (0..missing.len()).map(|p| next_present(&missing, p)).collect();
        assert_eq!(got, [2, 6, 6, 6, 10]);
        let long: Vec<usize> = (7..7 + crate::format::chunks::MAX_MISSING_CHUNKS).collect();
        assert_eq!(next_present(&long, 0), 7 + crate::format::chunks::MAX_MISSING_CHUNKS);
    }

}
