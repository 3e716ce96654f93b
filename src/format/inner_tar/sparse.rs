//! Sparse members of the inner tar: the map checks, GNU old sparse `'S'` (header entries and
//! extension blocks) and the PAX 1.0 map that leads the data area.

use super::*;

/// Checks a sparse map: sorted, non-overlapping, each run inside `realsize`, sizes summing to `stored`.
pub(super) fn check_map(map: &[(u64, u64)], realsize: u64, stored: u64) -> Step<()> {
    if map.len() > MAX_SPARSE_ENTRIES {
        return Err(map_err());
    }
    let mut end = 0u64;
    let mut sum = 0u64;
    for &(off, len) in map {
        let run_end = off.checked_add(len).ok_or_else(map_err)?;
        if off < end || run_end > realsize {
            return Err(map_err());
        }
        end = run_end;
        sum = sum.checked_add(len).ok_or_else(map_err)?;
    }
    if sum != stored {
        return Err(map_err());
    }
    Ok(())
}

pub(super) fn push_run(map: &mut Vec<(u64, u64)>, off: u64, len: u64) -> Step<()> {
    if map.len() >= MAX_SPARSE_ENTRIES {
        return Err(map_err());
    }
    map.push((off, len));
    Ok(())
}

impl InnerTar {
    /// Reads up to `entries.len() / 24` old-sparse entries; true if an empty entry ended the map.
    pub(super) fn old_sparse_entries(entries: &[u8], map: &mut Vec<(u64, u64)>) -> Step<bool> {
        for e in entries.chunks_exact(24) {
            if e[12] == 0 {
                return Ok(true);
            }
            let off = num(&e[..12]).map_err(|_| map_err())?;
            let len = num(&e[12..]).map_err(|_| map_err())?;
            push_run(map, off, len)?;
        }
        Ok(false)
    }

    pub(super) fn on_old_sparse_ext(&mut self, v: &mut dyn Visitor) -> Step<()> {
        let h = self.blk;
        let m = self.member.as_mut().ok_or_else(map_err)?;
        let map = m.map.as_mut().ok_or_else(map_err)?;
        let finished = Self::old_sparse_entries(&h[..504], map)?;
        if h[504] != 0 {
            if finished {
                return Err(map_err());
            }
            return Ok(());
        }
        self.start_sparse_data(v)
    }

    /// Old sparse map complete: validate it against realsize and the stored size, then data.
    pub(super) fn start_sparse_data(&mut self, v: &mut dyn Visitor) -> Step<()> {
        let m = self.member.as_ref().ok_or_else(map_err)?;
        let stored = m.stored;
        check_map(m.map.as_deref().unwrap_or(&[]), m.entry.size, stored)?;
        self.start_data(stored, pad_of(stored), true, v)
    }

    /// One block of PAX 1.0 map text.
    pub(super) fn on_map_block(&mut self, left: u64, v: &mut dyn Visitor) -> Step<()> {
        if left < BLOCK as u64 {
            return Err(map_err());
        }
        let left = left - BLOCK as u64;
        let h = self.blk;
        let t = &mut self.map_text;
        let m = self.member.as_mut().ok_or_else(map_err)?;
        let map = m.map.as_mut().ok_or_else(map_err)?;
        let mut done = false;
        for &b in h.iter() {
            match b {
                b'0'..=b'9' => {
                    t.acc = t
                        .acc
                        .checked_mul(10)
                        .and_then(|a| a.checked_add((b - b'0') as u64))
                        .filter(|&a| a <= i64::MAX as u64)
                        .ok_or_else(map_err)?;
                    t.digits += 1;
                }
                b'\n' if t.digits > 0 => {
                    let n = t.acc;
                    t.acc = 0;
                    t.digits = 0;
                    match t.count {
                        None => {
                            if n > MAX_SPARSE_ENTRIES as u64 {
                                return Err(map_err());
                            }
                            t.count = Some(n);
                        }
                        Some(_) => {
                            if t.numbers % 2 == 0 {
                                t.offset = n;
                            } else {
                                push_run(map, t.offset, n)?;
                            }
                            t.numbers += 1;
                        }
                    }
                }
                _ => return Err(map_err()),
            }
            if let Some(c) = t.count {
                if t.numbers == 2 * c {
                    done = true;
                    break;
                }
            }
        }
        if !done {
            self.state = State::SparseMap { left };
            return Ok(());
        }
        check_map(map, m.entry.size, left)?;
        self.start_data(left, pad_of(left), true, v)
    }
}
