//! A member's header block: its type, what the pending extended headers override, its sparse
//! map, and the start of its data.

use super::*;

impl InnerTar {
    pub(super) fn on_header(&mut self, v: &mut dyn Visitor) -> Step<()> {
        let h = self.blk;
        if h.iter().all(|&b| b == 0) {
            if self.pending.any {
                return Err(tampered(TarFault::ExtendedWithoutMember));
            }
            self.zero_blocks += 1;
            if self.zero_blocks >= 2 {
                self.state = State::Ended { trailing: 0 };
            }
            return Ok(());
        }
        // A lone zero block followed by a header is tolerated, as GNU tar does.
        self.zero_blocks = 0;

        let header = tar::Header(&h);
        if !header.checksum_ok() {
            return Err(tampered(TarFault::HeaderChecksum));
        }

        let flag = header.typeflag();
        let size = header_number(header.size())?;
        let pad = pad_of(size);
        match flag {
            b'x' | b'g' | b'L' | b'K' => {
                let (kind, cap) = match flag {
                    b'x' => (ExtKind::Pax, MAX_PAX),
                    b'g' => (ExtKind::Global, MAX_PAX),
                    b'L' => (ExtKind::LongName, MAX_LONG_NAME),
                    _ => (ExtKind::LongLink, MAX_LONG_NAME),
                };
                if size > cap {
                    return Err(Fault::OverLimit { limit: Limit::TarMetadata, value: size, cap });
                }
                self.ext.clear();
                if size == 0 {
                    self.on_ext_done(kind)?;
                    self.state = State::Header;
                } else {
                    self.state = State::Ext { kind, left: size, pad };
                }
                return Ok(());
            }
            _ => {}
        }

        // A real member: apply the pending extended headers.
        let pend = std::mem::take(&mut self.pending);
        let name = header.path();
        let kind = match flag {
            b'0' | 0 | b'7' | b'S' => Kind::File,
            b'5' => Kind::Dir,
            b'2' => Kind::Symlink,
            b'1' => Kind::HardLink,
            other => Kind::Other(other),
        };
        let path = pend.sparse_name.clone().or(pend.path).or(pend.long_name).unwrap_or(name);
        let link = pend.link.or(pend.long_link).unwrap_or_else(|| header.link_name().to_vec());
        let mode = header_number(header.mode())?;
        let mtime = match pend.mtime {
            Some(t) => t,
            None => header_number(header.mtime())?,
        };
        let size = pend.size.unwrap_or(size);
        let pad = pad_of(size);
        let entry = Entry { path, kind, link, size, mode, mtime, stored: size, data_start: 0, map: None };
        let mut member = Member { entry, map: None, run: 0, run_done: 0, pos: 0, stored: size };

        if flag == b'S' {
            let realsize = num(&h[483..495])?;
            let mut map = Vec::new();
            let finished = Self::old_sparse_entries(&h[386..482], &mut map)?;
            member.entry.size = realsize;
            member.map = Some(map);
            self.member = Some(member);
            if h[482] != 0 {
                if finished {
                    return Err(map_err());
                }
                self.state = State::OldSparseExt;
                return Ok(());
            }
            return self.start_sparse_data(v);
        }

        if member.entry.kind == Kind::File && pend.sparse_major == Some(1) {
            if pend.sparse_minor.unwrap_or(0) != 0 {
                return Err(Error::unsupported(format!(
                    "GNU sparse format 1.{} in an inner tar",
                    pend.sparse_minor.unwrap_or(0)
                ))
                .into());
            }
            member.entry.size = pend.sparse_realsize.ok_or_else(map_err)?;
            member.map = Some(Vec::new());
            self.member = Some(member);
            self.map_text = MapText::default();
            self.state = State::SparseMap { left: size };
            return Ok(());
        }
        if let Some(major) = pend.sparse_major {
            if major > 1 && member.entry.kind == Kind::File {
                return Err(Error::unsupported(format!("GNU sparse format {major}.x in an inner tar")).into());
            }
        }

        if member.entry.kind == Kind::File && pend.sparse_map.is_some() {
            // PAX sparse 0.0 / 0.1: the map came in the pax header, the data area holds the runs.
            if pend.sparse_offset.is_some() {
                return Err(map_err());
            }
            let map = pend.sparse_map.unwrap_or_default();
            if let Some(nb) = pend.sparse_numblocks {
                if nb != map.len() as u64 {
                    return Err(map_err());
                }
            }
            let realsize = pend.sparse_realsize.ok_or_else(map_err)?;
            check_map(&map, realsize, size)?;
            member.entry.size = realsize;
            member.map = Some(map);
            self.member = Some(member);
            return self.start_data(size, pad, true, v);
        }

        let deliver = member.entry.kind == Kind::File;
        self.member = Some(member);
        self.start_data(size, pad, deliver, v)
    }

    /// Reports the member and enters its data (or ends it at once when empty).
    pub(super) fn start_data(&mut self, stored: u64, pad: u64, deliver: bool, v: &mut dyn Visitor) -> Step<()> {
        self.entries += 1;
        if let Some(m) = self.member.as_mut() {
            m.entry.stored = stored;
            m.entry.data_start = self.pos;
            m.entry.map = m.map.clone();
            v.entry(&m.entry)?;
        }
        if stored == 0 {
            self.end_member(pad, v)
        } else {
            self.state = State::Data { left: stored, pad, deliver };
            Ok(())
        }
    }
}
