//! Grabbing the screen into memory shared with the X server (MIT-SHM).
//!
//! Each frame is a memfd segment attached to the server once (MIT-SHM
//! 1.2 `AttachFd`) and reused: `ShmGetImage` makes the server copy the
//! area straight into it, and the segment becomes the memory of the
//! `gst::Buffer` pushed downstream, with no copy on our side. When the
//! last buffer using a segment is released, the segment goes back to the
//! pool for a later grab; repeated frames share it meanwhile.
//!
//! Without MIT-SHM 1.2 (a remote display, an old server) frames are read
//! with a plain `GetImage` over the socket instead: dearer, but correct.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, Window};
use x11rb::rust_connection::RustConnection;

use crate::geometry::Rect;
use crate::x11::X11Error;

/// Free segments kept for reuse; more are given back to the system. A
/// frame in flight downstream (an encoder's queue) holds its segment, so
/// a few are needed; a burst beyond that should not stay allocated.
const MAX_FREE: usize = 6;

/// A mapping of a memfd of `len` bytes, attached to the server as `id`.
struct Segment {
    id: shm::Seg,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by the segment; who may touch
// it is decided by who owns the `Segment` (one owner at a time).
unsafe impl Send for Segment {}
unsafe impl Sync for Segment {}

impl Segment {
    fn create(conn: &RustConnection, len: usize) -> Result<Self, ShmError> {
        // SAFETY: plain system calls; every result is checked, the fd is
        // owned from here on.
        let fd = unsafe {
            let fd = libc::memfd_create(c"screencapsrc".as_ptr(), libc::MFD_CLOEXEC);
            if fd < 0 {
                return Err(ShmError::System(std::io::Error::last_os_error()));
            }
            OwnedFd::from_raw_fd(fd)
        };
        // SAFETY: as above; the mapping is released by `Drop`.
        let ptr = unsafe {
            if libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) != 0 {
                return Err(ShmError::System(std::io::Error::last_os_error()));
            }
            let ptr = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            );
            if ptr == libc::MAP_FAILED {
                return Err(ShmError::System(std::io::Error::last_os_error()));
            }
            ptr as *mut u8
        };
        // Owned from here on, so that an error below unmaps it.
        let mut segment = Segment { id: 0, ptr, len };
        segment.id = conn.generate_id().map_err(X11Error::from)?;
        // The fd goes to the server (and is closed here once sent); the
        // mapping stays valid without it. Checked: a remote display
        // refuses it, and that must be known before any grab relies on it.
        conn.shm_attach_fd(segment.id, fd, false)
            .map_err(X11Error::from)?
            .check()
            .map_err(|err| ShmError::Refused(err.to_string()))?;
        Ok(segment)
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` bytes for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` is the only way in.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: unmaps what `create` mapped, once.
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.len);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("{0}")]
    X11(#[from] X11Error),
    #[error("shared memory: {0}")]
    System(std::io::Error),
    #[error("the X server refused the shared memory segment: {0}")]
    Refused(String),
}

#[derive(Default)]
struct Shelf {
    free: Vec<Segment>,
    /// Segments dropped while the pool was alive: detached from the server
    /// at the next grab (only the grabbing thread talks to the server).
    retired: Vec<shm::Seg>,
    /// Size of the frames grabbed now; other segments are retired.
    frame_len: usize,
}

/// A grabbed frame: ours to change (the cursor is drawn into it) until it
/// becomes a buffer.
pub struct Frame {
    memory: FrameMemory,
}

enum FrameMemory {
    Shared(PooledSegment),
    Heap(Vec<u8>),
}

impl Frame {
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.memory {
            FrameMemory::Shared(s) => s.segment.as_mut().unwrap().bytes_mut(),
            FrameMemory::Heap(v) => v,
        }
    }

    pub fn into_buffer(self) -> gst::Buffer {
        match self.memory {
            FrameMemory::Shared(s) => gst::Buffer::from_slice(s),
            FrameMemory::Heap(v) => gst::Buffer::from_mut_slice(v),
        }
    }
}

/// A segment lent to a frame; back on the shelf when dropped.
struct PooledSegment {
    segment: Option<Segment>,
    shelf: Weak<Mutex<Shelf>>,
}

impl AsRef<[u8]> for PooledSegment {
    fn as_ref(&self) -> &[u8] {
        self.segment.as_ref().unwrap().bytes()
    }
}

impl Drop for PooledSegment {
    fn drop(&mut self) {
        let Some(segment) = self.segment.take() else {
            return;
        };
        // Gone with the pool: the server dropped its side with the
        // connection; only the mapping is left to release.
        let Some(shelf) = self.shelf.upgrade() else {
            return;
        };
        let mut shelf = shelf.lock().unwrap();
        if segment.len == shelf.frame_len && shelf.free.len() < MAX_FREE {
            shelf.free.push(segment);
        } else {
            shelf.retired.push(segment.id);
        }
    }
}

/// Grabs areas of the root window, through shared memory when it can.
pub struct Grabber {
    shelf: Arc<Mutex<Shelf>>,
    shm: bool,
}

impl Grabber {
    /// Whether the server offers MIT-SHM 1.2 decides the method; a refused
    /// first segment (a remote display) falls back to `GetImage` then.
    pub fn new(conn: &RustConnection) -> Result<Self, X11Error> {
        let shm = conn
            .extension_information(shm::X11_EXTENSION_NAME)?
            .is_some()
            && {
                let v = conn.shm_query_version()?.reply()?;
                (v.major_version, v.minor_version) >= (1, 2)
            };
        Ok(Self {
            shelf: Arc::default(),
            shm,
        })
    }

    pub fn uses_shm(&self) -> bool {
        self.shm
    }

    /// Reads `area` (inside the root window) as 32-bit pixels, rows of
    /// `area.width * 4` bytes.
    pub fn grab(
        &mut self,
        conn: &RustConnection,
        root: Window,
        area: Rect,
    ) -> Result<Frame, ShmError> {
        let len = area.width as usize * area.height as usize * 4;
        if self.shm {
            match self.take_segment(conn, len) {
                Ok(segment) => {
                    let id = segment.id;
                    // Lent first: on an error below it goes back to the
                    // shelf like any other.
                    let lent = PooledSegment {
                        segment: Some(segment),
                        shelf: Arc::downgrade(&self.shelf),
                    };
                    conn.shm_get_image(
                        root,
                        area.x as i16,
                        area.y as i16,
                        area.width as u16,
                        area.height as u16,
                        !0,
                        ImageFormat::Z_PIXMAP.into(),
                        id,
                        0,
                    )
                    .map_err(X11Error::from)?
                    .reply()
                    .map_err(X11Error::from)?;
                    return Ok(Frame {
                        memory: FrameMemory::Shared(lent),
                    });
                }
                Err(ShmError::Refused(reason)) => {
                    gst::warning!(
                        super::CAT,
                        "no shared memory with the X server ({reason}): reading frames over the socket"
                    );
                    self.shm = false;
                }
                Err(err) => return Err(err),
            }
        }
        let reply = conn
            .get_image(
                ImageFormat::Z_PIXMAP,
                root,
                area.x as i16,
                area.y as i16,
                area.width as u16,
                area.height as u16,
                !0,
            )
            .map_err(X11Error::from)?
            .reply()
            .map_err(X11Error::from)?;
        let mut data = reply.data;
        data.resize(len, 0);
        Ok(Frame {
            memory: FrameMemory::Heap(data),
        })
    }

    /// A free segment of `len` bytes, or a new one; detaches the retired.
    fn take_segment(&self, conn: &RustConnection, len: usize) -> Result<Segment, ShmError> {
        let (segment, retired) = {
            let mut shelf = self.shelf.lock().unwrap();
            if shelf.frame_len != len {
                // A new size: the old segments are of no more use.
                shelf.frame_len = len;
                let old: Vec<_> = shelf.free.drain(..).map(|s| s.id).collect();
                shelf.retired.extend(old);
            }
            (shelf.free.pop(), std::mem::take(&mut shelf.retired))
        };
        for id in retired {
            conn.shm_detach(id).map_err(X11Error::from)?;
        }
        match segment {
            Some(segment) => Ok(segment),
            None => Segment::create(conn, len),
        }
    }
}
