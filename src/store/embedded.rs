//! The default store: an append-only log on local disk, a directory of segment files
//! (`00000001.log`, …) with the index in memory. A stored response is one frame appended to
//! the newest segment by the writer thread, and the frames waiting together are written and
//! made durable (`fdatasync`) at once: one write and one sync for many responses, and a
//! store under load wakes its writer at most once per [`COMMIT_INTERVAL`]. A restart (or a
//! crash) keeps every committed response: the segments are read back at start, a torn frame
//! at the end of the last one is cut off.
//!
//! Retention (by age, then the oldest while over `max_bytes`) works on the index; the space
//! of what is gone is taken back in the background, by the writer between its batches: a
//! segment with nothing live is removed, one under [`LIVE_FLOOR`] live has its live frames
//! copied forward (a bounded amount per batch, [`COMPACT_STEP`]), then it is removed. So the
//! directory stays within about 1.7× `max_bytes` plus a segment while running.
//!
//! A store file of the earlier redb format at `path` (or beside it, `path.redb`) is imported
//! once at start and kept renamed to `….imported`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use super::{now_secs, Retention, Store, StoreError, StoreStats, StoredResponse};

/// Under load, the least time between two commits of the writer.
const COMMIT_INTERVAL: Duration = Duration::from_millis(10);
/// The most writes one commit takes.
const MAX_BATCH: usize = 4096;
/// A sealed segment with less than this share of live bytes is compacted.
const LIVE_FLOOR: f64 = 0.6;
/// The most bytes of a segment one compaction step reads (between two batches).
const COMPACT_STEP: u64 = 4 << 20;
/// Segment sizes: `max_bytes / 16`, within these bounds.
const SEGMENT_MIN: u64 = 64 << 10;
const SEGMENT_MAX: u64 = 64 << 20;
/// A frame: its payload's length and CRC-32, then the payload.
const HEADER: usize = 8;
/// The largest frame read back (a larger length is a corrupt header).
const FRAME_MAX: u32 = 1 << 30;

const PUT: u8 = 1;
const DELETE: u8 = 2;
const SPEND: u8 = 3;
/// The longest id a frame holds (longer output item ids are not indexed).
const ID_MAX: usize = u16::MAX as usize;

fn err(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("response store: {what}: {e}"))
}

/// Where a frame is: its segment, its offset there, its whole length (header included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct At {
    seg: u32,
    off: u64,
    len: u32,
}

/// A kept response in the index.
struct Entry {
    at: At,
    created_at: u64,
    /// Its record's size (what `max_bytes` bounds).
    size: u64,
    /// Its output item ids (indexed in [`Index::items`]).
    items: Box<[Box<str>]>,
    /// Its place in the order written (set by [`Index::insert`]).
    seq: u64,
}

struct Segment {
    file: Arc<File>,
    len: u64,
    /// Bytes of its frames still live (responses, ledger totals).
    live: u64,
}

/// What is where: the writer changes it after each durable write; readers look up here.
#[derive(Default)]
struct Index {
    responses: HashMap<Arc<str>, Entry>,
    /// (created_at, the order written, id): oldest first, in the order written within a second.
    by_age: BTreeSet<(u64, u64, Arc<str>)>,
    /// The next write's place in that order.
    seq: u64,
    items: HashMap<Box<str>, Arc<str>>,
    spend: HashMap<Box<str>, (u64, At)>,
    segments: BTreeMap<u32, Segment>,
    bytes: u64,
}

impl Index {
    fn live(&mut self, at: At, delta: i64) {
        if let Some(s) = self.segments.get_mut(&at.seg) {
            s.live = s.live.saturating_add_signed(delta * i64::from(at.len));
        }
    }

    fn insert(&mut self, id: &str, mut e: Entry) {
        self.remove(id);
        let id: Arc<str> = Arc::from(id);
        e.seq = self.seq;
        self.seq += 1;
        self.live(e.at, 1);
        self.bytes += e.size;
        self.by_age.insert((e.created_at, e.seq, Arc::clone(&id)));
        for item in e.items.iter() {
            self.items.insert(item.clone(), Arc::clone(&id));
        }
        self.responses.insert(id, e);
    }

    fn remove(&mut self, id: &str) -> Option<Entry> {
        let (key, old) = self.responses.remove_entry(id)?;
        self.live(old.at, -1);
        self.bytes = self.bytes.saturating_sub(old.size);
        self.by_age.remove(&(old.created_at, old.seq, key));
        for item in old.items.iter() {
            if self.items.get(item).is_some_and(|r| &**r == id) {
                self.items.remove(item);
            }
        }
        Some(old)
    }

    fn set_spend(&mut self, key: &str, total: u64, at: At) {
        if let Some((_, old)) = self.spend.insert(key.into(), (total, at)) {
            self.live(old, -1);
        }
        self.live(at, 1);
    }

    /// Retention: the expired, then the oldest while over the bound (but not `keep`, the
    /// response just written, unless it expired). Returns what went, with the segment each
    /// was in.
    fn trim(&mut self, retention: &Retention, keep: Option<&str>) -> Vec<(Arc<str>, u32)> {
        let now = now_secs();
        let mut gone = Vec::new();
        // Past `keep` (over the bound yet kept): it may be older by its created_at (a
        // background response that took long) or share the oldest second with others.
        let mut past_keep = false;
        loop {
            let skip = |k: &&(u64, u64, Arc<str>)| past_keep && keep == Some(&*k.2);
            let Some((created, _, id)) = self.by_age.iter().find(|k| !skip(k)).cloned() else {
                break;
            };
            let expired = created + retention.ttl.as_secs() < now;
            let over = self.bytes > retention.max_bytes;
            if !expired && over && keep == Some(&*id) {
                past_keep = true;
                continue;
            }
            if !expired && !over {
                break;
            }
            if let Some(e) = self.remove(&id) {
                gone.push((id, e.at.seg));
            }
        }
        gone
    }
}

/// One decoded frame payload.
enum Frame<'a> {
    Put {
        created_at: u64,
        id: &'a str,
        items: Vec<&'a str>,
        json: &'a [u8],
    },
    Delete {
        /// The segment of the response it deleted: the frame is needed while a segment up
        /// to that one exists (one that may hold a copy of the response).
        target: u32,
        id: &'a str,
    },
    Spend {
        total: u64,
        key: &'a str,
    },
}

/// A string of at most [`ID_MAX`] bytes (the caller checks), its length first.
fn put_u16_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Append a frame whose payload `fill` writes; returns its whole length.
fn frame(out: &mut Vec<u8>, fill: impl FnOnce(&mut Vec<u8>)) -> u32 {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    fill(out);
    let payload = &out[start + HEADER..];
    let len = payload.len() as u32;
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    (out.len() - start) as u32
}

fn encode_put(out: &mut Vec<u8>, created_at: u64, id: &str, items: &[&str], json: &[u8]) -> u32 {
    frame(out, |p| {
        p.push(PUT);
        p.extend_from_slice(&created_at.to_le_bytes());
        put_u16_str(p, id);
        p.extend_from_slice(&(items.len().min(u16::MAX as usize) as u16).to_le_bytes());
        for item in items.iter().take(u16::MAX as usize) {
            put_u16_str(p, item);
        }
        p.extend_from_slice(json);
    })
}

fn encode_delete(out: &mut Vec<u8>, target: u32, id: &str) -> u32 {
    frame(out, |p| {
        p.push(DELETE);
        p.extend_from_slice(&target.to_le_bytes());
        p.extend_from_slice(id.as_bytes());
    })
}

fn encode_spend(out: &mut Vec<u8>, total: u64, key: &str) -> u32 {
    frame(out, |p| {
        p.push(SPEND);
        p.extend_from_slice(&total.to_le_bytes());
        p.extend_from_slice(key.as_bytes());
    })
}

/// A reader over a payload; every read is bounds-checked (`None`: corrupt).
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str16(&mut self) -> Option<&'a str> {
        let n = self.u16()? as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }
    fn rest_str(self) -> Option<&'a str> {
        std::str::from_utf8(self.0).ok()
    }
}

fn decode(payload: &[u8]) -> Option<Frame<'_>> {
    let (&kind, rest) = payload.split_first()?;
    let mut c = Cursor(rest);
    match kind {
        PUT => {
            let created_at = c.u64()?;
            let id = c.str16()?;
            let n = c.u16()?;
            let items = (0..n).map(|_| c.str16()).collect::<Option<Vec<_>>>()?;
            Some(Frame::Put {
                created_at,
                id,
                items,
                json: c.0,
            })
        }
        DELETE => {
            let target = c.u32()?;
            Some(Frame::Delete {
                target,
                id: c.rest_str()?,
            })
        }
        SPEND => {
            let total = c.u64()?;
            Some(Frame::Spend {
                total,
                key: c.rest_str()?,
            })
        }
        _ => None,
    }
}

/// The payload of a whole frame (header included), when its length and CRC hold.
fn payload_of(frame: &[u8]) -> Option<&[u8]> {
    let len = u32::from_le_bytes(frame.get(..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(frame.get(4..8)?.try_into().ok()?);
    let payload = frame.get(HEADER..HEADER + len)?;
    (crc32fast::hash(payload) == crc).then_some(payload)
}

/// Why [`scan`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// At the end of the file.
    End,
    /// After about its budget.
    Budget,
    /// At a torn or corrupt frame.
    Bad,
}

/// The frames of a segment file from `from` on, up to about `budget` bytes: calls
/// `each(offset, whole frame)`; returns where it stopped, and why.
fn scan(
    file: &File,
    from: u64,
    budget: u64,
    mut each: impl FnMut(u64, &[u8]),
) -> std::io::Result<(u64, Stop)> {
    let len = file.metadata()?.len();
    let mut pos = from;
    let mut chunk: Vec<u8> = Vec::new();
    let mut chunk_at = pos;
    loop {
        if pos >= len {
            return Ok((pos, Stop::End));
        }
        if pos - from >= budget {
            return Ok((pos, Stop::Budget));
        }
        let mut head = [0u8; HEADER];
        if !read_at(file, &mut chunk, &mut chunk_at, pos, &mut head, len)? {
            return Ok((pos, Stop::Bad));
        }
        let plen = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if plen > FRAME_MAX || pos + HEADER as u64 + u64::from(plen) > len {
            return Ok((pos, Stop::Bad));
        }
        let mut whole = vec![0u8; HEADER + plen as usize];
        if !read_at(file, &mut chunk, &mut chunk_at, pos, &mut whole, len)?
            || payload_of(&whole).is_none()
        {
            return Ok((pos, Stop::Bad));
        }
        each(pos, &whole);
        pos += whole.len() as u64;
    }
}

/// Fill `out` from `file` at `pos`, through a read-ahead buffer of 1 MiB.
fn read_at(
    file: &File,
    chunk: &mut Vec<u8>,
    chunk_at: &mut u64,
    pos: u64,
    out: &mut [u8],
    len: u64,
) -> std::io::Result<bool> {
    let end = pos + out.len() as u64;
    if end > len {
        return Ok(false);
    }
    let inside = pos >= *chunk_at && end <= *chunk_at + chunk.len() as u64;
    if !inside {
        let want = (out.len() as u64).max(1 << 20).min(len - pos) as usize;
        chunk.resize(want, 0);
        file.read_exact_at(chunk, pos)?;
        *chunk_at = pos;
    }
    let s = (pos - *chunk_at) as usize;
    out.copy_from_slice(&chunk[s..s + out.len()]);
    Ok(true)
}

fn segment_path(dir: &Path, seg: u32) -> PathBuf {
    dir.join(format!("{seg:08}.log"))
}

/// What the store and its writer share.
struct Shared {
    index: RwLock<Index>,
    retention: Retention,
    stats: StoreStats,
    count: AtomicU64,
    bytes: AtomicU64,
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }
    fn publish(&self, idx: &Index) {
        self.count
            .store(idx.responses.len() as u64, Ordering::Relaxed);
        self.bytes.store(idx.bytes, Ordering::Relaxed);
    }
}

pub struct EmbeddedStore {
    dir: PathBuf,
    shared: Arc<Shared>,
    writes: std::sync::Mutex<Option<std::sync::mpsc::Sender<WriteOp>>>,
    writer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Held (locked) while the store is open: one process per directory.
    _lock: File,
}

impl Drop for EmbeddedStore {
    /// Let the writer finish what it has, then release the directory.
    fn drop(&mut self) {
        if let Ok(mut w) = self.writes.lock() {
            w.take();
        }
        let handle = self.writer.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// A write for the writer thread, with where to report its outcome.
enum WriteOp {
    Put(
        Arc<StoredResponse>,
        tokio::sync::oneshot::Sender<Result<(), StoreError>>,
    ),
    Delete(
        String,
        tokio::sync::oneshot::Sender<Result<bool, StoreError>>,
    ),
    /// Add micro-dollars to ledger keys.
    Spend(
        Vec<String>,
        u64,
        tokio::sync::oneshot::Sender<Result<(), StoreError>>,
    ),
}

impl EmbeddedStore {
    /// Open (or create) the store directory; its parents are created when missing.
    pub fn open(path: &Path, retention: Retention) -> Result<Self, StoreError> {
        let legacy = legacy::take(path)?;
        std::fs::create_dir_all(path)
            .map_err(|e| err(&format!("cannot create {}", path.display()), e))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join("LOCK"))
            .map_err(|e| err(&format!("cannot open {}", path.display()), e))?;
        lock.try_lock().map_err(|e| {
            err(
                &format!("{} is in use by another process", path.display()),
                e,
            )
        })?;
        let shared = Arc::new(Shared {
            index: RwLock::new(Index::default()),
            retention,
            stats: StoreStats::default(),
            count: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        });
        let mut log = Log::open(path, retention.max_bytes, Arc::clone(&shared))?;
        if let Some(file) = legacy {
            if let Err(e) = legacy::import(&file, &mut log) {
                legacy::undo(path, &file);
                return Err(e);
            }
            legacy::done(&file);
        }
        {
            let mut idx = shared.write();
            log.evicted = idx.trim(&retention, None);
            shared.publish(&idx);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer(log, rx))
            .map_err(|e| err("writer thread", e))?;
        Ok(EmbeddedStore {
            dir: path.to_owned(),
            shared,
            writes: std::sync::Mutex::new(Some(tx)),
            writer: std::sync::Mutex::new(Some(handle)),
            _lock: lock,
        })
    }

    fn send(&self, op: WriteOp) -> Result<(), StoreError> {
        let tx = match self.writes.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let Some(tx) = tx else {
            return Err(err("writer", "stopped"));
        };
        tx.send(op).map_err(|_| {
            self.shared.stats.count(&self.shared.stats.errors);
            err("writer", "stopped")
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Bytes of its segment files now.
    pub fn disk_bytes(&self) -> u64 {
        self.shared.read().segments.values().map(|s| s.len).sum()
    }
}

/// The writer's side: the segments and the newest one's file for appends.
struct Log {
    dir: PathBuf,
    shared: Arc<Shared>,
    segment_max: u64,
    active: u32,
    file: File,
    len: u64,
    /// The segment being compacted and how far.
    compacting: Option<(u32, u64)>,
    /// Responses retention removed, whose delete frames go with the next commit (so that a
    /// restart does not bring them back).
    evicted: Vec<(Arc<str>, u32)>,
}

impl Log {
    /// Read the segments back into the index, the last one's torn tail cut off.
    fn open(dir: &Path, max_bytes: u64, shared: Arc<Shared>) -> Result<Log, StoreError> {
        let mut segs: Vec<u32> = std::fs::read_dir(dir)
            .map_err(|e| err(&format!("cannot read {}", dir.display()), e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name();
                let name = name.to_str()?;
                name.strip_suffix(".log")?.parse::<u32>().ok()
            })
            .collect();
        segs.sort_unstable();
        let last = segs.last().copied();
        {
            let mut idx = shared.write();
            for &seg in &segs {
                let path = segment_path(dir, seg);
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(|e| err(&format!("cannot open {}", path.display()), e))?;
                let file_len = file.metadata().map_err(|e| err("stat", e))?.len();
                idx.segments.insert(
                    seg,
                    Segment {
                        file: Arc::new(file.try_clone().map_err(|e| err("open", e))?),
                        len: file_len,
                        live: 0,
                    },
                );
                let (end, _) = scan(&file, 0, u64::MAX, |off, whole| {
                    replay(&mut idx, seg, off, whole);
                })
                .map_err(|e| err(&format!("cannot read {}", path.display()), e))?;
                if end < file_len {
                    if Some(seg) == last {
                        tracing::warn!(path = %path.display(), at = end, "response store: a torn write at the end, cut off");
                        file.set_len(end).map_err(|e| err("truncate", e))?;
                        if let Some(s) = idx.segments.get_mut(&seg) {
                            s.len = end;
                        }
                    } else {
                        tracing::warn!(path = %path.display(), at = end, "response store: a corrupt frame; what follows it in this segment is not read");
                        shared.stats.count(&shared.stats.errors);
                    }
                }
            }
            shared.publish(&idx);
        }
        let segment_max = (max_bytes / 16).clamp(SEGMENT_MIN, SEGMENT_MAX);
        let mut log = Log {
            dir: dir.to_owned(),
            shared,
            segment_max,
            active: 0,
            file: File::open("/dev/null").map_err(|e| err("open", e))?,
            len: 0,
            compacting: None,
            evicted: Vec::new(),
        };
        // Appends go on in the last segment while it has room, else in a new one.
        let room = last.and_then(|seg| {
            let len = log.shared.read().segments.get(&seg)?.len;
            (len < segment_max).then_some((seg, len))
        });
        match room {
            Some((seg, len)) => {
                let path = segment_path(dir, seg);
                log.file = OpenOptions::new()
                    .read(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| err(&format!("cannot open {}", path.display()), e))?;
                log.active = seg;
                log.len = len;
            }
            None => log.roll(last.unwrap_or(0) + 1)?,
        }
        Ok(log)
    }

    /// Start segment `seg` as the one appended to.
    fn roll(&mut self, seg: u32) -> Result<(), StoreError> {
        let path = segment_path(&self.dir, seg);
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| err(&format!("cannot create {}", path.display()), e))?;
        let reader = Arc::new(file.try_clone().map_err(|e| err("open", e))?);
        // The new name is durable before anything is written into it.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        self.shared.write().segments.insert(
            seg,
            Segment {
                file: reader,
                len: 0,
                live: 0,
            },
        );
        self.active = seg;
        self.file = file;
        self.len = 0;
        Ok(())
    }

    /// Append `buf` and make it durable; on failure the segment is cut back.
    fn append(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        if buf.is_empty() {
            return Ok(());
        }
        let done = self
            .file
            .write_all(buf)
            .and_then(|()| self.file.sync_data());
        match done {
            Ok(()) => {
                self.len += buf.len() as u64;
                if let Some(s) = self.shared.write().segments.get_mut(&self.active) {
                    s.len = self.len;
                }
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(err("write", e))
            }
        }
    }

    /// Where a frame encoded at `buf_len` of the batch's buffer goes.
    fn at(&self, buf_len: usize, len: u32) -> At {
        At {
            seg: self.active,
            off: self.len + buf_len as u64,
            len,
        }
    }

    /// Write a batch in one append and one sync, then apply it to the index; each op's
    /// outcome goes back to its sender.
    fn commit(&mut self, batch: Vec<WriteOp>) {
        if self.len >= self.segment_max {
            if let Err(e) = self.roll(self.active + 1) {
                return self.fail(batch, &e);
            }
        }
        enum Plan {
            Put(Arc<str>, Entry),
            Delete(String),
            Spend(Vec<(String, u64, At)>),
            Refused(StoreError),
        }
        let mut buf = Vec::new();
        let mut plans = Vec::with_capacity(batch.len());
        // What each op answers: a put `true`, a delete whether there was something.
        let mut answers = Vec::with_capacity(batch.len());
        for (id, target) in &self.evicted {
            encode_delete(&mut buf, *target, id);
        }
        {
            let idx = self.shared.read();
            // Ids put or deleted earlier in this batch; ledger totals moved by it.
            let mut present: HashMap<&str, bool> = HashMap::new();
            let mut totals: HashMap<&str, u64> = HashMap::new();
            for op in &batch {
                match op {
                    WriteOp::Put(r, _) if r.id.len() > ID_MAX => {
                        plans.push(Plan::Refused(err("put", "the response id is too long")));
                        answers.push(false);
                    }
                    WriteOp::Put(r, _) => {
                        let json = r.to_bytes();
                        let mut ids = r.output_ids();
                        ids.retain(|i| i.len() <= ID_MAX);
                        let items: Vec<&str> = ids.iter().map(String::as_str).collect();
                        let start = buf.len();
                        let len = encode_put(&mut buf, r.created_at, &r.id, &items, &json);
                        plans.push(Plan::Put(
                            Arc::from(r.id.as_str()),
                            Entry {
                                at: self.at(start, len),
                                created_at: r.created_at,
                                size: json.len() as u64,
                                items: ids.into_iter().map(String::into_boxed_str).collect(),
                                seq: 0,
                            },
                        ));
                        answers.push(true);
                        present.insert(&r.id, true);
                    }
                    WriteOp::Delete(id, _) => {
                        let there = match present.get(id.as_str()) {
                            Some(&p) => p.then_some(self.active),
                            None => idx.responses.get(id.as_str()).map(|e| e.at.seg),
                        };
                        if let Some(target) = there {
                            encode_delete(&mut buf, target, id);
                        }
                        plans.push(Plan::Delete(id.clone()));
                        answers.push(there.is_some());
                        present.insert(id, false);
                    }
                    WriteOp::Spend(keys, micro, _) => {
                        let mut moved = Vec::with_capacity(keys.len());
                        for k in keys {
                            let now = totals
                                .get(k.as_str())
                                .copied()
                                .or_else(|| idx.spend.get(k.as_str()).map(|s| s.0))
                                .unwrap_or(0);
                            let total = now.saturating_add(*micro);
                            totals.insert(k, total);
                            let start = buf.len();
                            let len = encode_spend(&mut buf, total, k);
                            moved.push((k.clone(), total, self.at(start, len)));
                        }
                        plans.push(Plan::Spend(moved));
                        answers.push(true);
                    }
                }
            }
        }
        if let Err(e) = self.append(&buf) {
            return self.fail(batch, &e);
        }
        self.evicted.clear();
        let stats = &self.shared.stats;
        let mut refused = Vec::new();
        {
            let mut idx = self.shared.write();
            let mut last_put = None;
            for plan in plans {
                match plan {
                    Plan::Put(id, e) => {
                        idx.insert(&id, e);
                        last_put = Some(id);
                        refused.push(None);
                    }
                    Plan::Delete(id) => {
                        idx.remove(&id);
                        refused.push(None);
                    }
                    Plan::Spend(moved) => {
                        for (k, total, at) in moved {
                            idx.set_spend(&k, total, at);
                        }
                        refused.push(None);
                    }
                    Plan::Refused(e) => refused.push(Some(e)),
                }
            }
            let gone = idx.trim(&self.shared.retention, last_put.as_deref());
            stats
                .evictions
                .fetch_add(gone.len() as u64, Ordering::Relaxed);
            self.evicted = gone;
            self.shared.publish(&idx);
        }
        for ((op, answer), refused) in batch.into_iter().zip(answers).zip(refused) {
            if let Some(e) = refused {
                self.fail(vec![op], &e);
                continue;
            }
            match op {
                WriteOp::Put(_, tx) => {
                    stats.count(&stats.writes);
                    let _ = tx.send(Ok(()));
                }
                WriteOp::Delete(_, tx) => {
                    let _ = tx.send(Ok(answer));
                }
                WriteOp::Spend(_, _, tx) => {
                    let _ = tx.send(Ok(()));
                }
            }
        }
    }

    fn fail(&self, batch: Vec<WriteOp>, e: &StoreError) {
        let stats = &self.shared.stats;
        for op in batch {
            stats.count(&stats.errors);
            match op {
                WriteOp::Put(_, tx) => {
                    let _ = tx.send(Err(e.clone()));
                }
                WriteOp::Delete(_, tx) => {
                    let _ = tx.send(Err(e.clone()));
                }
                WriteOp::Spend(_, _, tx) => {
                    let _ = tx.send(Err(e.clone()));
                }
            }
        }
    }

    /// The sealed segment to compact next: the one with the smallest live share under
    /// [`LIVE_FLOOR`].
    fn pick(&self) -> Option<u32> {
        let idx = self.shared.read();
        let share = |g: &Segment| g.live as f64 / g.len.max(1) as f64;
        idx.segments
            .iter()
            .filter(|(&s, g)| s != self.active && (g.len == 0 || share(g) < LIVE_FLOOR))
            .min_by(|a, b| share(a.1).total_cmp(&share(b.1)))
            .map(|(&s, _)| s)
    }

    /// One bounded step of taking space back: a sealed segment with nothing live is
    /// removed; one under [`LIVE_FLOOR`] live has up to [`COMPACT_STEP`] bytes read and its
    /// live frames copied to the newest segment, and is removed once read through. Returns
    /// whether it did something.
    fn compact_step(&mut self) -> Result<bool, StoreError> {
        let (seg, from) = match self.compacting.take() {
            Some(c) => c,
            None => match self.pick() {
                Some(s) => (s, 0),
                None => return Ok(false),
            },
        };
        let (file, nothing_live, oldest_other) = {
            let idx = self.shared.read();
            let Some(g) = idx.segments.get(&seg) else {
                return Ok(true);
            };
            // A delete frame is needed while another segment up to its target exists (one
            // that may hold a copy of what it deleted).
            let oldest_other = idx.segments.keys().copied().find(|&s| s != seg);
            (Arc::clone(&g.file), g.live == 0, oldest_other)
        };
        let (end, stop) = if nothing_live {
            (0, Stop::End)
        } else {
            let mut copies: Vec<(At, Vec<u8>)> = Vec::new();
            let scanned = {
                let idx = self.shared.read();
                scan(&file, from, COMPACT_STEP, |off, whole| {
                    let at = At {
                        seg,
                        off,
                        len: whole.len() as u32,
                    };
                    let live = match payload_of(whole).and_then(decode) {
                        Some(Frame::Put { id, .. }) => {
                            idx.responses.get(id).is_some_and(|e| e.at == at)
                        }
                        Some(Frame::Spend { key, .. }) => {
                            idx.spend.get(key).is_some_and(|s| s.1 == at)
                        }
                        Some(Frame::Delete { target, .. }) => {
                            oldest_other.is_some_and(|o| o <= target)
                        }
                        None => false,
                    };
                    if live {
                        copies.push((at, whole.to_vec()));
                    }
                })
                .map_err(|e| err("compact", e))?
            };
            self.relocate(copies)?;
            scanned
        };
        match stop {
            Stop::Budget => self.compacting = Some((seg, end)),
            Stop::End | Stop::Bad => {
                if stop == Stop::Bad {
                    tracing::warn!(segment = seg, at = end, "response store: a corrupt frame in a compacted segment; what follows it was not readable");
                }
                self.shared.write().segments.remove(&seg);
                let path = segment_path(&self.dir, seg);
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), "response store: cannot remove a compacted segment: {e}");
                }
            }
        }
        Ok(true)
    }

    /// Copy live frames to the newest segment (one append), then point the index at them.
    fn relocate(&mut self, copies: Vec<(At, Vec<u8>)>) -> Result<(), StoreError> {
        if copies.is_empty() {
            return Ok(());
        }
        if self.len >= self.segment_max {
            self.roll(self.active + 1)?;
        }
        let mut buf = Vec::new();
        let mut moved = Vec::with_capacity(copies.len());
        for (from, whole) in &copies {
            moved.push((*from, self.at(buf.len(), from.len)));
            buf.extend_from_slice(whole);
        }
        self.append(&buf)?;
        let mut idx = self.shared.write();
        for ((from, to), (_, whole)) in moved.into_iter().zip(&copies) {
            match payload_of(whole).and_then(decode) {
                Some(Frame::Put { id, .. }) => {
                    let ours = idx.responses.get_mut(id).filter(|e| e.at == from);
                    if let Some(e) = ours {
                        e.at = to;
                        idx.live(from, -1);
                        idx.live(to, 1);
                    }
                }
                Some(Frame::Spend { key, total }) => {
                    if idx.spend.get(key).is_some_and(|s| s.1 == from) {
                        idx.set_spend(key, total, to);
                    }
                }
                Some(Frame::Delete { .. }) | None => {}
            }
        }
        Ok(())
    }
}

/// Apply one frame read back at start.
fn replay(idx: &mut Index, seg: u32, off: u64, whole: &[u8]) {
    let at = At {
        seg,
        off,
        len: whole.len() as u32,
    };
    match payload_of(whole).and_then(decode) {
        Some(Frame::Put {
            created_at,
            id,
            items,
            json,
        }) => idx.insert(
            id,
            Entry {
                at,
                created_at,
                size: json.len() as u64,
                items: items.into_iter().map(Box::from).collect(),
                seq: 0,
            },
        ),
        Some(Frame::Delete { id, .. }) => {
            idx.remove(id);
        }
        Some(Frame::Spend { total, key }) => idx.set_spend(key, total, at),
        None => {}
    }
}

/// The writer thread: every write of the store goes through it. It sleeps out the rest of
/// [`COMMIT_INTERVAL`] after a commit before taking what has arrived (so a store under
/// load is woken once per interval, not per response), commits that in one append and one
/// sync, then takes one step of compaction; an idle store commits a write at once.
fn writer(mut log: Log, rx: std::sync::mpsc::Receiver<WriteOp>) {
    let mut last_commit: Option<Instant> = None;
    loop {
        let busy = log.compacting.is_some() || !log.evicted.is_empty() || log.pick().is_some();
        let first = if busy {
            match rx.recv_timeout(COMMIT_INTERVAL) {
                Ok(op) => Some(op),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(op) => Some(op),
                Err(_) => break,
            }
        };
        match first {
            Some(first) => {
                if let Some(t) = last_commit {
                    let left = (t + COMMIT_INTERVAL).saturating_duration_since(Instant::now());
                    if !left.is_zero() {
                        std::thread::sleep(left);
                    }
                }
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(op) => batch.push(op),
                        Err(_) => break,
                    }
                }
                last_commit = Some(Instant::now());
                log.commit(batch);
            }
            // Idle: the delete frames of what retention removed are written now.
            None if !log.evicted.is_empty() => log.commit(Vec::new()),
            None => {}
        }
        if let Err(e) = log.compact_step() {
            log.shared.stats.count(&log.shared.stats.errors);
            tracing::warn!("response store: compaction: {e}");
        }
    }
    if !log.evicted.is_empty() {
        log.commit(Vec::new());
    }
}

/// Spend in the store's log, written by the writer thread with the responses.
#[async_trait::async_trait]
impl super::ledger::Ledger for EmbeddedStore {
    async fn add_spend(
        &self,
        client: &str,
        periods: &[String],
        micro: u64,
    ) -> Result<(), StoreError> {
        let keys = periods
            .iter()
            .map(|p| super::ledger::key(client, p))
            .collect();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(WriteOp::Spend(keys, micro, tx))?;
        rx.await.map_err(|_| err("writer", "stopped"))?
    }

    async fn spend(&self, client: &str, period: &str) -> Result<u64, StoreError> {
        let k = super::ledger::key(client, period);
        Ok(self.shared.read().spend.get(k.as_str()).map_or(0, |s| s.0))
    }
}

/// Read a response's frame and decode its record.
fn read_record(file: &File, at: At) -> Result<Option<StoredResponse>, StoreError> {
    let mut whole = vec![0u8; at.len as usize];
    file.read_exact_at(&mut whole, at.off)
        .map_err(|e| err("read", e))?;
    match payload_of(&whole).and_then(decode) {
        Some(Frame::Put { json, .. }) => Ok(StoredResponse::from_bytes(json)),
        _ => Err(err("read", "a corrupt record")),
    }
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn put(&self, r: StoredResponse) -> Result<(), StoreError> {
        self.put_shared(Arc::new(r)).await
    }

    async fn put_shared(&self, r: Arc<StoredResponse>) -> Result<(), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(WriteOp::Put(r, tx))?;
        rx.await.map_err(|e| err("writer", e))?
    }

    async fn get(&self, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        let ttl = self.shared.retention.ttl.as_secs();
        let found = {
            let idx = self.shared.read();
            idx.responses
                .get(id)
                .filter(|e| e.created_at + ttl >= now_secs())
                .and_then(|e| Some((Arc::clone(&idx.segments.get(&e.at.seg)?.file), e.at)))
        };
        let Some((file, at)) = found else {
            return Ok(self.shared.stats.lookup(None));
        };
        let read = tokio::task::spawn_blocking(move || read_record(&file, at))
            .await
            .map_err(|e| err("worker", e))
            .and_then(|r| r);
        match read {
            Ok(r) => Ok(self.shared.stats.lookup(r)),
            Err(e) => {
                self.shared.stats.count(&self.shared.stats.errors);
                Err(e)
            }
        }
    }

    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(WriteOp::Delete(id.to_owned(), tx))?;
        rx.await.map_err(|e| err("writer", e))?
    }

    async fn find_item(&self, item_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .shared
            .read()
            .items
            .get(item_id)
            .map(|id| id.to_string()))
    }

    fn size(&self) -> (u64, u64) {
        (
            self.shared.count.load(Ordering::Relaxed),
            self.shared.bytes.load(Ordering::Relaxed),
        )
    }

    fn stats(&self) -> &StoreStats {
        &self.shared.stats
    }
}

/// The store file of earlier versions (a redb database), imported once.
mod legacy {
    use super::*;
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};

    const RESPONSES: TableDefinition<&str, &[u8]> = TableDefinition::new("responses");
    const SPEND: TableDefinition<&str, u64> = TableDefinition::new("spend");

    fn imported(file: &Path) -> PathBuf {
        let mut name = file.as_os_str().to_owned();
        name.push(".imported");
        PathBuf::from(name)
    }

    /// The earlier store file to import, if any: `path` itself when it is a file (moved
    /// aside so that the directory can take its name), else `path.redb` beside it when
    /// `path` does not exist yet.
    pub(super) fn take(path: &Path) -> Result<Option<PathBuf>, StoreError> {
        if path.is_file() {
            let aside = imported(path);
            std::fs::rename(path, &aside)
                .map_err(|e| err(&format!("cannot move {} aside", path.display()), e))?;
            return Ok(Some(aside));
        }
        let beside = path.with_extension("redb");
        Ok((!path.exists() && beside != path && beside.is_file()).then_some(beside))
    }

    /// The import failed: the directory goes, the file is as it was.
    pub(super) fn undo(path: &Path, file: &Path) {
        let _ = std::fs::remove_dir_all(path);
        if file == imported(path) {
            let _ = std::fs::rename(file, path);
        }
    }

    /// The import is durable: the file is kept under its `.imported` name.
    pub(super) fn done(file: &Path) {
        if file.extension().is_some_and(|e| e == "imported") {
            return;
        }
        let _ = std::fs::rename(file, imported(file));
    }

    /// Copy its responses and ledger totals into the log.
    pub(super) fn import(file: &Path, log: &mut Log) -> Result<(), StoreError> {
        let db = redb::Database::open(file)
            .map_err(|e| err(&format!("cannot open {}", file.display()), e))?;
        let txn = db.begin_read().map_err(|e| err("import", e))?;
        let mut ops = Vec::new();
        let mut waits = Vec::new();
        match txn.open_table(RESPONSES) {
            Ok(t) => {
                for row in t.iter().map_err(|e| err("import", e))? {
                    let (_, v) = row.map_err(|e| err("import", e))?;
                    if let Some(r) = StoredResponse::from_bytes(v.value()) {
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        ops.push(WriteOp::Put(Arc::new(r), tx));
                        waits.push(rx);
                    }
                    if ops.len() >= MAX_BATCH {
                        log.commit(std::mem::take(&mut ops));
                    }
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(err("import", e)),
        }
        let mut spends = Vec::new();
        match txn.open_table(SPEND) {
            Ok(t) => {
                for row in t.iter().map_err(|e| err("import", e))? {
                    let (k, v) = row.map_err(|e| err("import", e))?;
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    ops.push(WriteOp::Spend(vec![k.value().to_owned()], v.value(), tx));
                    spends.push(rx);
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(err("import", e)),
        }
        log.commit(ops);
        let count = waits.len();
        for mut rx in waits {
            rx.try_recv().map_err(|_| err("import", "not written"))??;
        }
        for mut rx in spends {
            rx.try_recv().map_err(|_| err("import", "not written"))??;
        }
        tracing::info!(from = %file.display(), responses = count, "response store imported");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::tests::{contract, record, retention};
    use super::*;

    #[tokio::test]
    async fn embedded_store_contract_and_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/responses");
        {
            let s = EmbeddedStore::open(&path, retention(3600, 1 << 20)).unwrap();
            contract(&s).await;
            s.put(record("resp_kept", None, now_secs(), "kept"))
                .await
                .unwrap();
        }
        // Reopened: what was stored is there, and counted; what was deleted stays deleted.
        let s = EmbeddedStore::open(&path, retention(3600, 1 << 20)).unwrap();
        assert!(s.get("resp_kept").await.unwrap().is_some());
        assert!(s.get("resp_a").await.unwrap().is_none());
        assert_eq!(
            s.find_item("msg_two").await.unwrap().as_deref(),
            Some("resp_b")
        );
        assert!(s.find_item("msg_two_again").await.unwrap().is_none());
        assert_eq!(s.size().0, 2);
    }

    #[tokio::test]
    async fn one_process_per_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _s = EmbeddedStore::open(dir.path(), retention(3600, 1 << 20)).unwrap();
        let again = EmbeddedStore::open(dir.path(), retention(3600, 1 << 20));
        assert!(again.is_err_and(|e| e.0.contains("in use")));
    }

    /// The spend ledger in the store: the contract, and the spend is still there after a
    /// restart.
    #[tokio::test]
    async fn embedded_ledger_contract_and_restart() {
        use crate::store::ledger::{contract, Ledger};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("responses");
        {
            let s = EmbeddedStore::open(&path, retention(3600, 1 << 20)).unwrap();
            contract(&s).await;
        }
        let s = EmbeddedStore::open(&path, retention(3600, 1 << 20)).unwrap();
        assert_eq!(s.spend("alice", "day:2026-12-03").await.unwrap(), 2_000);
        s.add_spend("alice", &["day:2026-12-03".to_owned()], 1)
            .await
            .unwrap();
        assert_eq!(s.spend("alice", "day:2026-12-03").await.unwrap(), 2_001);
    }

    #[tokio::test]
    async fn expiry_and_eviction_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let now = now_secs();
        let s = EmbeddedStore::open(&dir.path().join("a"), retention(60, 1 << 20)).unwrap();
        s.put(record("resp_old", None, now - 120, "x"))
            .await
            .unwrap();
        assert!(s.get("resp_old").await.unwrap().is_none());
        // Its items went with it.
        assert!(s.find_item("msg_x").await.unwrap().is_none());
        let one = record("resp_0", None, now, "x").to_bytes().len() as u64;
        let s = EmbeddedStore::open(&dir.path().join("b"), retention(3600, one * 2)).unwrap();
        for i in 0..5 {
            s.put(record(&format!("resp_{i}"), None, now + i, "x"))
                .await
                .unwrap();
        }
        assert!(s.get("resp_0").await.unwrap().is_none());
        assert!(s.get("resp_4").await.unwrap().is_some());
        assert_eq!(s.size().0, 2);
        assert_eq!(s.stats().evictions.load(Ordering::Relaxed), 3);
    }

    /// Within one second the oldest is the first written (not the first by id), and the
    /// response just written, whatever its id, does not stop the eviction of the others.
    #[tokio::test]
    async fn eviction_within_one_second_goes_in_the_order_written() {
        let dir = tempfile::tempdir().unwrap();
        let now = now_secs();
        let one = record("resp_c", None, now, "x").to_bytes().len() as u64;
        let s = EmbeddedStore::open(dir.path(), retention(3600, one * 2)).unwrap();
        for id in ["resp_c", "resp_b", "resp_a"] {
            s.put(record(id, None, now, "x")).await.unwrap();
        }
        assert!(s.get("resp_c").await.unwrap().is_none());
        assert!(s.get("resp_b").await.unwrap().is_some());
        assert!(s.get("resp_a").await.unwrap().is_some());
        assert_eq!(s.size(), (2, one * 2));
    }
    /// Writes, replacements and deletes far past the bound: the directory stays within 2×
    /// `max_bytes` while running (compacted in the background between batches), the
    /// newest responses are all there, and a restart reads back the same.
    #[tokio::test]
    async fn the_directory_stays_within_twice_the_bound_while_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r");
        let now = now_secs();
        let body = "z".repeat(1000);
        let one = record("resp_00000", None, now, &body).to_bytes().len() as u64;
        let max = 256 << 10;
        let s = Arc::new(EmbeddedStore::open(&path, retention(3600, max)).unwrap());
        let mut largest = 0;
        for round in 0..40u64 {
            let mut puts = Vec::new();
            for i in 0..100 {
                let n = round * 100 + i;
                let s = Arc::clone(&s);
                let r = record(&format!("resp_{n:05}"), None, now + n, &body);
                puts.push(tokio::spawn(async move { s.put(r).await }));
            }
            for p in puts {
                p.await.unwrap().unwrap();
            }
            // Every third of this round deleted, one replaced.
            let mut deletes = Vec::new();
            for i in (0..100).step_by(3) {
                let s = Arc::clone(&s);
                let id = format!("resp_{:05}", round * 100 + i);
                deletes.push(tokio::spawn(async move { s.delete(&id).await }));
            }
            for d in deletes {
                assert!(d.await.unwrap().unwrap());
            }
            let n = round * 100 + 1;
            s.put(record(&format!("resp_{n:05}"), None, now + n, "short"))
                .await
                .unwrap();
            largest = largest.max(s.disk_bytes());
        }
        eprintln!("at most {largest} bytes on disk for a bound of {max}");
        assert!(
            largest <= 2 * max,
            "{largest} bytes on disk for a bound of {max}"
        );
        assert!(
            largest > max / 2,
            "{largest}: the test did not fill the store"
        );
        let (count, bytes) = s.size();
        assert!(bytes <= max && count >= max / one / 2, "{count} {bytes}");
        assert!(s.get("resp_03998").await.unwrap().is_some());
        assert!(s.get("resp_03999").await.unwrap().is_none(), "deleted");
        assert!(s.get("resp_03900").await.unwrap().is_none(), "deleted");
        let short = s.get("resp_03901").await.unwrap().unwrap();
        assert!(short.input[0].get().contains("short in"));
        drop(s);
        let on_disk: u64 = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(on_disk <= 2 * max, "{on_disk}");
        let s = EmbeddedStore::open(&path, retention(3600, max)).unwrap();
        assert_eq!(s.size(), (count, bytes));
        assert!(s.get("resp_03900").await.unwrap().is_none());
        let short = s.get("resp_03901").await.unwrap().unwrap();
        assert!(short.input[0].get().contains("short in"));
        assert!(s.get("resp_03998").await.unwrap().is_some());
        assert!(s.get("resp_03999").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_torn_write_at_the_end_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        let now = now_secs();
        {
            let s = EmbeddedStore::open(&path, retention(3600, 1 << 20)).unwrap();
            s.put(record("resp_a", None, now, "a")).await.unwrap();
            s.put(record("resp_b", None, now, "b")).await.unwrap();
        }
        let seg = segment_path(&path, 1);
        let good = std::fs::metadata(&seg).unwrap().len();
        // Half a frame, as a crash in the middle of a write leaves it.
        let mut buf = Vec::new();
        encode_put(&mut buf, now, "resp_c", &[], b"{}");
        OpenOptions::new()
            .append(true)
            .open(&seg)
            .unwrap()
            .write_all(&buf[..buf.len() / 2])
            .unwrap();
        let s = EmbeddedStore::open(&path, retention(3600, 1 << 20)).unwrap();
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), good);
        assert!(s.get("resp_a").await.unwrap().is_some());
        assert!(s.get("resp_b").await.unwrap().is_some());
        assert!(s.get("resp_c").await.unwrap().is_none());
        s.put(record("resp_d", None, now, "d")).await.unwrap();
        drop(s);
        let s = EmbeddedStore::open(&path, retention(3600, 1 << 20)).unwrap();
        assert_eq!(s.size().0, 3);
    }

    #[tokio::test]
    async fn a_smaller_bound_applies_at_start_and_the_space_is_taken_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let now = now_secs();
        let body = "y".repeat(64 * 1024);
        {
            let s = EmbeddedStore::open(&path, retention(3600, 1 << 30)).unwrap();
            for i in 0..200 {
                s.put(record(&format!("resp_{i:03}"), None, now + i, &body))
                    .await
                    .unwrap();
            }
            assert_eq!(s.size().0, 200);
        }
        let dir_bytes = || -> u64 {
            std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().metadata().unwrap().len())
                .sum()
        };
        let big = dir_bytes();
        assert!(big > 12 << 20, "{big}");
        let one = record("resp_000", None, now, &body).to_bytes().len() as u64;
        let s = EmbeddedStore::open(&path, retention(3600, one * 3)).unwrap();
        // The newest three are kept; the directory shrinks to what they need, in the
        // background.
        assert_eq!(s.size().0, 3);
        assert!(s.get("resp_199").await.unwrap().is_some());
        assert!(s.get("resp_196").await.unwrap().is_none());
        let mut small = dir_bytes();
        for _ in 0..200 {
            if small < big / 4 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            small = dir_bytes();
        }
        assert!(small < big / 4, "{small} vs {big}");
        assert!(s.get("resp_198").await.unwrap().is_some());
    }

    /// A store file of the earlier (redb) format is imported once: its responses (with
    /// their items) and its ledger, and the file is kept aside.
    #[tokio::test]
    async fn an_earlier_store_file_is_imported() {
        use redb::TableDefinition;
        const RESPONSES: TableDefinition<&str, &[u8]> = TableDefinition::new("responses");
        const SPEND: TableDefinition<&str, u64> = TableDefinition::new("spend");
        let now = now_secs();
        for beside in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("responses.redb");
            {
                let db = redb::Database::create(&file).unwrap();
                let txn = db.begin_write().unwrap();
                {
                    let mut t = txn.open_table(RESPONSES).unwrap();
                    for id in ["resp_1", "resp_2"] {
                        let r = record(id, None, now, id);
                        t.insert(id, r.to_bytes().as_slice()).unwrap();
                    }
                    let mut s = txn.open_table(SPEND).unwrap();
                    s.insert("alice\u{1f}day:x", 42).unwrap();
                }
                txn.commit().unwrap();
            }
            // The earlier default named the file; the new one names the directory beside.
            let path = if beside {
                dir.path().join("responses")
            } else {
                file.clone()
            };
            let s = EmbeddedStore::open(&path, retention(3600, 1 << 20)).unwrap();
            assert_eq!(s.size().0, 2);
            assert!(s.get("resp_2").await.unwrap().is_some());
            assert_eq!(
                s.find_item("msg_resp_1").await.unwrap().as_deref(),
                Some("resp_1")
            );
            assert_eq!(
                s.shared.read().spend.get("alice\u{1f}day:x").map(|s| s.0),
                Some(42)
            );
            assert!(dir.path().join("responses.redb.imported").is_file());
            drop(s);
            // Not imported twice.
            let s = EmbeddedStore::open(&path, retention(3600, 1 << 20)).unwrap();
            assert_eq!(s.size().0, 2);
        }
    }
}
