//! The inner tar push parser and its sparse maps. Byte 0 seeds the piece sizes and a lost span
//! (salvage: `skip` then, if that cannot be crossed, `give_up`). A visitor checks the promises:
//! entries and end_entry alternate, data offsets ascend within the entry's size, no call above
//! 1 MiB, never more than the stored bytes, and lost ranges lie within the size, never over
//! delivered bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qubes_rescue::error::Result;
use qubes_rescue::format::inner_tar::{Entry, InnerTar, Visitor, MAX_DATA_CALL};

#[derive(Default)]
struct Check {
    open: bool,
    size: u64,
    stored: u64,
    next: u64,
    delivered: u64,
}

impl Visitor for Check {
    fn entry(&mut self, e: &Entry) -> Result<()> {
        assert!(!self.open, "entry inside an entry");
        *self = Check { open: true, size: e.size, stored: e.stored, next: 0, delivered: 0 };
        Ok(())
    }
    fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        assert!(self.open, "data outside an entry");
        assert!(!bytes.is_empty() && bytes.len() <= MAX_DATA_CALL);
        assert!(offset >= self.next, "offsets ascend");
        let end = offset + bytes.len() as u64;
        assert!(end <= self.size, "data within the size");
        self.next = end;
        self.delivered += bytes.len() as u64;
        assert!(self.delivered <= self.stored);
        Ok(())
    }
    fn end_entry(&mut self) -> Result<()> {
        assert!(self.open, "end_entry without entry");
        self.open = false;
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, tar)) = data.split_first() else { return };
    let piece = [1usize, 7, 512, 4096, usize::MAX][seed as usize % 5];
    let gap = (seed & 0x80 != 0).then(|| {
        let at = (seed as usize * 977) % (tar.len() + 1);
        (at, (at + 1 + (seed as usize % 3) * 700).min(tar.len()))
    });
    let mut t = InnerTar::new();
    let mut v = Check::default();
    let mut at = 0;
    let lost_check = |v: &mut Check, o: u64, l: u64| {
        assert!(l > 0 && o + l <= v.size, "lost range within the size");
        assert!(o >= v.next, "lost never over delivered bytes");
        v.next = o + l;
    };
    let feed = |t: &mut InnerTar, v: &mut Check, bytes: &[u8]| -> bool {
        bytes.chunks(piece.max(1)).all(|p| t.feed("fuzz", p, v).is_ok())
    };
    if let Some((a, b)) = gap {
        if !feed(&mut t, &mut v, &tar[..a]) {
            return;
        }
        let mut lost = Vec::new();
        let synced = match t.skip("fuzz", (b - a) as u64, &mut v, &mut |o, l| lost.push((o, l))) {
            Ok(s) => s,
            Err(_) => return,
        };
        for (o, l) in lost.drain(..) {
            lost_check(&mut v, o, l);
        }
        if !synced {
            t.give_up(&mut |o, l| lost.push((o, l)));
            for (o, l) in lost {
                lost_check(&mut v, o, l);
            }
            assert!(t.feed("fuzz", b"x", &mut v).is_err() && t.finish("fuzz", &mut v).is_err());
            return;
        }
        at = b;
    }
    if feed(&mut t, &mut v, &tar[at..]) {
        let _ = t.finish("fuzz", &mut v);
    }
});
