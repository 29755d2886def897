//! The power cut: turns each file's "page cache" state into what a disk could hold after
//! power was lost (see the crate docs for the model). Call it only when no process has
//! the files open.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::log::{self, Record};

/// Sector size of the simulated disk.
const SECTOR: u64 = 512;
/// Chance that a sector holding an unsynced write's bytes is torn.
const TEAR: f64 = 0.1;

/// What one cut did, summed over the files.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CutReport {
    /// Unsynced writes and truncates found.
    pub unsynced: u64,
    /// Unsynced writes none of whose sectors reached the disk.
    pub unsynced_dropped: u64,
    /// Unsynced writes that left at least one torn sector.
    pub torn_writes: u64,
    /// Files created and never synced whose directory entry was lost.
    pub files_vanished: u64,
    /// SHM files deleted or filled with garbage.
    pub shm_damaged: u64,
}

impl CutReport {
    fn add(&mut self, o: CutReport) {
        self.unsynced += o.unsynced;
        self.unsynced_dropped += o.unsynced_dropped;
        self.torn_writes += o.torn_writes;
        self.files_vanished += o.files_vanished;
        self.shm_damaged += o.shm_damaged;
    }
}

/// Cuts the power for every file in `dir` written through the crash VFS, choosing with
/// `rng`, and removes the side logs (after the cut everything on "disk" is durable).
pub fn power_cut(dir: &Path, rng: &mut fastrand::Rng) -> std::io::Result<CutReport> {
    power_cut_inner(dir, rng).map_err(|(path, e)| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

fn power_cut_inner(dir: &Path, rng: &mut fastrand::Rng) -> Result<CutReport, (std::path::PathBuf, std::io::Error)> {
    let at = |p: &Path| {
        let p = p.to_path_buf();
        move |e| (p, e)
    };
    let mut report = CutReport::default();
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).map_err(at(dir))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in &entries {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(target) = name.strip_suffix(".crashlog") {
            let target = dir.join(target);
            report.add(cut_file(&target, path, rng).map_err(at(&target))?);
            std::fs::remove_file(path).map_err(at(path))?;
        } else if name.ends_with("-shm") {
            match rng.u8(0..3) {
                0 => {
                    std::fs::remove_file(path).map_err(at(path))?;
                    report.shm_damaged += 1;
                }
                1 => {
                    let len = std::fs::metadata(path).map_err(at(path))?.len() as usize;
                    let garbage: Vec<u8> = std::iter::repeat_with(|| rng.u8(..)).take(len).collect();
                    std::fs::write(path, garbage).map_err(at(path))?;
                    report.shm_damaged += 1;
                }
                _ => {}
            }
        }
    }
    Ok(report)
}

/// One version of a sector: its bytes (`None`: beyond the end of the file) and which
/// record produced it with the byte range (within the sector) that record wrote.
struct Version {
    bytes: Option<Vec<u8>>,
    record: usize,
    written: Option<(usize, usize)>,
}

fn sector_of(image: &[u8], s: u64) -> Option<Vec<u8>> {
    let start = (s * SECTOR) as usize;
    if image.len() <= start {
        return None;
    }
    Some(image[start..image.len().min(start + SECTOR as usize)].to_vec())
}

fn cut_file(target: &Path, log_file: &Path, rng: &mut fastrand::Rng) -> std::io::Result<CutReport> {
    let mut report = CutReport::default();
    let records = log::read_all(log_file)?;
    if records.is_empty() || !target.exists() {
        return Ok(report);
    }
    let created = records.iter().any(|r| matches!(r, Record::Created));
    let latest = std::fs::read(target)?;

    // 1. Undo every unsynced change, newest first: the image at the last sync.
    let mut synced = latest;
    for r in records.iter().rev() {
        match r {
            Record::Write { off, old_size, pre, .. } => {
                let off = *off as usize;
                if synced.len() < off + pre.len() {
                    synced.resize(off + pre.len(), 0);
                }
                synced[off..off + pre.len()].copy_from_slice(pre);
                synced.resize(*old_size as usize, 0);
            }
            Record::Truncate { new_size, old_size, pre } => {
                synced.resize(*old_size as usize, 0);
                let at = *new_size as usize;
                if at + pre.len() <= synced.len() {
                    synced[at..at + pre.len()].copy_from_slice(pre);
                }
            }
            Record::Created => {}
        }
    }

    // 2. Redo them, noting each sector's successive versions.
    let mut image = synced.clone();
    let mut versions: BTreeMap<u64, Vec<Version>> = BTreeMap::new();
    let mut unsynced = 0usize;
    for (i, r) in records.iter().enumerate() {
        let (first, last, range) = match r {
            Record::Write { off, data, .. } => {
                unsynced += 1;
                let end = *off as usize + data.len();
                if image.len() < end {
                    image.resize(end, 0);
                }
                image[*off as usize..end].copy_from_slice(data);
                if data.is_empty() {
                    continue;
                }
                (*off / SECTOR, (end as u64 - 1) / SECTOR, Some((*off, end as u64)))
            }
            Record::Truncate { new_size, old_size, .. } => {
                unsynced += 1;
                image.resize(*new_size as usize, 0);
                let (lo, hi) = ((*new_size).min(*old_size), (*new_size).max(*old_size));
                if hi == lo {
                    continue;
                }
                (lo / SECTOR, (hi - 1) / SECTOR, None)
            }
            Record::Created => continue,
        };
        for s in first..=last {
            let written = range.map(|(a, b)| {
                let base = s * SECTOR;
                ((a.max(base) - base) as usize, (b.min(base + SECTOR) - base) as usize)
            });
            versions.entry(s).or_default().push(Version { bytes: sector_of(&image, s), record: i, written });
        }
    }
    report.unsynced = unsynced as u64;

    // 3. Each touched sector ends up at the synced version or any one unsynced version,
    //    sometimes torn inside the bytes its write covered.
    let mut survived = vec![false; records.len()];
    let mut torn = vec![false; records.len()];
    let mut out = synced.clone();
    let mut chosen: Vec<(u64, Option<Vec<u8>>)> = Vec::new();
    for (s, vs) in &versions {
        let pick = rng.usize(0..=vs.len());
        if pick == 0 {
            chosen.push((*s, sector_of(&synced, *s)));
            continue;
        }
        let v = &vs[pick - 1];
        survived[v.record] = true;
        let mut bytes = v.bytes.clone();
        if let (Some(b), Some((a, e))) = (bytes.as_mut(), v.written) {
            if rng.f64() < TEAR && e > a {
                torn[v.record] = true;
                let older = if pick >= 2 { vs[pick - 2].bytes.clone() } else { sector_of(&synced, *s) };
                let split = rng.usize(a..e);
                for (k, byte) in b.iter_mut().enumerate().take(e).skip(split) {
                    *byte = match (rng.bool(), older.as_ref().and_then(|o| o.get(k))) {
                        (true, Some(old)) => *old,
                        _ => rng.u8(..),
                    };
                }
            }
        }
        chosen.push((*s, bytes));
    }
    let mut len = synced.len();
    for (s, bytes) in &chosen {
        if let Some(b) = bytes {
            len = len.max((s * SECTOR) as usize + b.len());
        }
    }
    out.resize(len, 0);
    for (s, bytes) in &chosen {
        let start = (s * SECTOR) as usize;
        match bytes {
            Some(b) => out[start..start + b.len()].copy_from_slice(b),
            None => {
                let end = len.min(start + SECTOR as usize);
                if start < end {
                    out[start..end].fill(0);
                }
            }
        }
    }
    for (i, r) in records.iter().enumerate() {
        if matches!(r, Record::Write { data, .. } if !data.is_empty()) && !survived[i] {
            report.unsynced_dropped += 1;
        }
    }
    report.torn_writes = torn.iter().filter(|t| **t).count() as u64;

    // 4. A file created and never synced may have lost its directory entry.
    if created && rng.bool() {
        std::fs::remove_file(target)?;
        report.files_vanished += 1;
        return Ok(report);
    }
    let mut f = std::fs::OpenOptions::new().write(true).truncate(true).open(target)?;
    f.write_all(&out)?;
    f.sync_all()?;
    Ok(report)
}
