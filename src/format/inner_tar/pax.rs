//! pax extended headers (`x`) and GNU long names (`L`, `K`) of the inner tar: what they set
//! for the next member, GNU sparse 0.0/0.1/1.0 keys included.

use super::*;

/// pax `mtime`: `[-]seconds[.fraction]`, the fraction dropped.
pub(super) fn pax_time(v: &[u8]) -> Option<i64> {
    let (neg, v) = match v.first() {
        Some(b'-') => (true, &v[1..]),
        _ => (false, v),
    };
    let int = match v.iter().position(|&b| b == b'.') {
        Some(i) => {
            if !v[i + 1..].iter().all(|b| b.is_ascii_digit()) {
                return None;
            }
            &v[..i]
        }
        None => v,
    };
    let n = dec(int)? as i64;
    Some(if neg { -n } else { n })
}

impl InnerTar {
    pub(super) fn on_ext_done(&mut self, kind: ExtKind) -> Step<()> {
        let body = std::mem::take(&mut self.ext);
        match kind {
            ExtKind::Global => {}
            ExtKind::Pax => {
                self.pending.any = true;
                self.parse_pax(&body)?;
            }
            ExtKind::LongName => {
                self.pending.any = true;
                self.pending.long_name = Some(cstr(&body).to_vec());
            }
            ExtKind::LongLink => {
                self.pending.any = true;
                self.pending.long_link = Some(cstr(&body).to_vec());
            }
        }
        Ok(())
    }

    pub(super) fn parse_pax(&mut self, buf: &[u8]) -> Step<()> {
        for record in tar::pax_records(buf) {
            let (key, value) = record.map_err(|()| tampered(TarFault::PaxHeader))?;
            self.pax_record(key, value)?;
        }
        Ok(())
    }

    pub(super) fn pax_record(&mut self, key: &[u8], val: &[u8]) -> Step<()> {
        let bad = || tampered(TarFault::PaxHeader);
        let pend = &mut self.pending;
        let opt = |v: &[u8]| if v.is_empty() { None } else { Some(v.to_vec()) };
        match key {
            b"path" => pend.path = opt(val),
            b"linkpath" => pend.link = opt(val),
            b"size" => pend.size = if val.is_empty() { None } else { Some(dec(val).ok_or_else(bad)?) },
            b"mtime" => pend.mtime = if val.is_empty() { None } else { Some(pax_time(val).ok_or_else(bad)?) },
            b"GNU.sparse.major" => pend.sparse_major = Some(dec(val).ok_or_else(map_err)?),
            b"GNU.sparse.minor" => pend.sparse_minor = Some(dec(val).ok_or_else(map_err)?),
            b"GNU.sparse.name" => pend.sparse_name = opt(val),
            b"GNU.sparse.realsize" | b"GNU.sparse.size" => {
                pend.sparse_realsize = Some(dec(val).ok_or_else(map_err)?)
            }
            b"GNU.sparse.numblocks" => pend.sparse_numblocks = Some(dec(val).ok_or_else(map_err)?),
            b"GNU.sparse.offset" => pend.sparse_offset = Some(dec(val).ok_or_else(map_err)?),
            b"GNU.sparse.numbytes" => {
                let off = pend.sparse_offset.take().ok_or_else(map_err)?;
                let len = dec(val).ok_or_else(map_err)?;
                push_run(pend.sparse_map.get_or_insert_with(Vec::new), off, len)?;
            }
            b"GNU.sparse.map" => {
                let map = pend.sparse_map.get_or_insert_with(Vec::new);
                map.clear();
                if !val.is_empty() {
                    let mut it = val.split(|&b| b == b',');
                    while let Some(o) = it.next() {
                        let l = it.next().ok_or_else(map_err)?;
                        push_run(map, dec(o).ok_or_else(map_err)?, dec(l).ok_or_else(map_err)?)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}
