//! Small X11 helpers over x11rb shared by `screencapsrc`, the device
//! provider and the device list: connecting, naming windows, finding them.

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::randr::ConnectionExt as _;
use x11rb::protocol::xproto::{self, AtomEnum, ConnectionExt as _, MapState, Window};
use x11rb::rust_connection::RustConnection;

use crate::geometry::Rect;

#[derive(Debug, thiserror::Error)]
pub enum X11Error {
    #[error("cannot open X display {display}: {source}")]
    Connect {
        display: String,
        source: x11rb::errors::ConnectError,
    },
    #[error("X11 connection failed: {0}")]
    Connection(#[from] x11rb::errors::ConnectionError),
    #[error("X11 request failed: {0}")]
    Reply(#[from] x11rb::errors::ReplyError),
    #[error("X11 ran out of ids: {0}")]
    Ids(#[from] x11rb::errors::ReplyOrIdError),
    #[error("the X server lacks the {0} extension")]
    MissingExtension(&'static str),
    #[error("{0}")]
    NotFound(String),
}

/// An open connection with the facts about its default screen.
pub struct Display {
    pub conn: RustConnection,
    pub name: String,
    pub root: Window,
    pub screen_rect: Rect,
}

impl Display {
    /// Opens `name`, or `$DISPLAY` when `None`.
    pub fn open(name: Option<&str>) -> Result<Self, X11Error> {
        let shown = name
            .map(str::to_owned)
            .or_else(|| std::env::var("DISPLAY").ok())
            .unwrap_or_else(|| "(unset $DISPLAY)".to_owned());
        let (conn, screen_num) =
            RustConnection::connect(name).map_err(|source| X11Error::Connect {
                display: shown.clone(),
                source,
            })?;
        let screen = &conn.setup().roots[screen_num];
        let root = screen.root;
        let screen_rect = Rect::new(
            0,
            0,
            screen.width_in_pixels as u32,
            screen.height_in_pixels as u32,
        );
        Ok(Self {
            conn,
            name: shown,
            root,
            screen_rect,
        })
    }

    fn atom(&self, name: &str) -> Result<xproto::Atom, X11Error> {
        Ok(self.conn.intern_atom(false, name.as_bytes())?.reply()?.atom)
    }

    /// The size of the root window now (it changes with RandR).
    pub fn refresh_screen_rect(&mut self) -> Result<Rect, X11Error> {
        let geometry = self.conn.get_geometry(self.root)?.reply()?;
        self.screen_rect = Rect::new(0, 0, geometry.width as u32, geometry.height as u32);
        Ok(self.screen_rect)
    }

    /// Where a window's contents are, in root coordinates.
    pub fn window_rect(&self, window: Window) -> Result<Rect, X11Error> {
        let geometry = self.conn.get_geometry(window)?;
        let origin = self.conn.translate_coordinates(window, self.root, 0, 0)?;
        let geometry = geometry.reply()?;
        let origin = origin.reply()?;
        Ok(Rect::new(
            origin.dst_x as i32,
            origin.dst_y as i32,
            geometry.width as u32,
            geometry.height as u32,
        ))
    }

    /// The title a user sees: `_NET_WM_NAME` (UTF-8) or else `WM_NAME`.
    pub fn window_title(&self, window: Window) -> Result<Option<String>, X11Error> {
        let net_wm_name = self.atom("_NET_WM_NAME")?;
        let utf8 = self.atom("UTF8_STRING")?;
        let reply = self
            .conn
            .get_property(false, window, net_wm_name, utf8, 0, 1024)?
            .reply()?;
        if !reply.value.is_empty() {
            return Ok(Some(String::from_utf8_lossy(&reply.value).into_owned()));
        }
        let reply = self
            .conn
            .get_property(false, window, AtomEnum::WM_NAME, AtomEnum::ANY, 0, 1024)?
            .reply()?;
        if reply.value.is_empty() {
            return Ok(None);
        }
        // WM_NAME is Latin-1 (STRING) or, from some toolkits, UTF-8.
        Ok(Some(match String::from_utf8(reply.value.clone()) {
            Ok(text) => text,
            Err(_) => reply.value.iter().map(|&b| b as char).collect(),
        }))
    }

    fn window_class(&self, window: Window) -> Result<Option<String>, X11Error> {
        let reply = self
            .conn
            .get_property(false, window, AtomEnum::WM_CLASS, AtomEnum::STRING, 0, 256)?
            .reply()?;
        // "instance\0Class\0": the class is what users recognise.
        let mut parts = reply
            .value
            .split(|&b| b == 0)
            .filter(|part| !part.is_empty());
        let instance = parts.next();
        let class = parts.next().or(instance);
        Ok(class.map(|c| String::from_utf8_lossy(c).into_owned()))
    }

    /// The windows a user would call "application windows": the window
    /// manager's `_NET_CLIENT_LIST` when there is one, otherwise mapped,
    /// named top-level windows (looking one level down for clients that a
    /// non-EWMH window manager reparented).
    pub fn application_windows(&self) -> Result<Vec<WindowInfo>, X11Error> {
        let client_list = self.atom("_NET_CLIENT_LIST")?;
        let reply = self
            .conn
            .get_property(false, self.root, client_list, AtomEnum::WINDOW, 0, 4096)?
            .reply()?;
        let candidates: Vec<Window> = match reply.value32() {
            Some(ids) if reply.value_len > 0 => ids.collect(),
            _ => self.top_level_named_windows()?,
        };
        let mut windows = Vec::new();
        for id in candidates {
            // Windows may vanish while we look at them: skip, don't fail.
            if let Ok(Some(info)) = self.window_info(id) {
                windows.push(info);
            }
        }
        Ok(windows)
    }

    fn top_level_named_windows(&self) -> Result<Vec<Window>, X11Error> {
        let tree = self.conn.query_tree(self.root)?.reply()?;
        let mut found = Vec::new();
        for child in tree.children {
            let attributes = self.conn.get_window_attributes(child)?.reply();
            let Ok(attributes) = attributes else { continue };
            if attributes.map_state != MapState::VIEWABLE || attributes.override_redirect {
                continue;
            }
            if matches!(self.window_title(child), Ok(Some(_))) {
                found.push(child);
                continue;
            }
            if let Ok(subtree) = self.conn.query_tree(child)?.reply() {
                found.extend(
                    subtree
                        .children
                        .into_iter()
                        .find(|&c| matches!(self.window_title(c), Ok(Some(_)))),
                );
            }
        }
        Ok(found)
    }

    pub fn window_info(&self, window: Window) -> Result<Option<WindowInfo>, X11Error> {
        let attributes = self.conn.get_window_attributes(window)?.reply()?;
        let Some(title) = self.window_title(window)? else {
            return Ok(None);
        };
        Ok(Some(WindowInfo {
            id: window,
            title,
            class: self.window_class(window)?,
            rect: self.window_rect(window)?,
            viewable: attributes.map_state == MapState::VIEWABLE,
        }))
    }

    /// Finds a window by its title: an exact match first, then a
    /// case-insensitive one, then a title containing `name`, then the
    /// window class (so `window-name=Terminal` finds a terminal).
    pub fn find_window(&self, name: &str) -> Result<WindowInfo, X11Error> {
        let windows = self.application_windows()?;
        let lower = name.to_lowercase();
        let tests: [&dyn Fn(&WindowInfo) -> bool; 4] = [
            &|w| w.title == name,
            &|w| w.title.to_lowercase() == lower,
            &|w| w.title.to_lowercase().contains(&lower),
            &|w| w.class.as_deref().map(str::to_lowercase).as_deref() == Some(&lower),
        ];
        for test in tests {
            // A visible window wins over an unmapped one of the same name.
            let mut matching: Vec<&WindowInfo> = windows.iter().filter(|w| test(w)).collect();
            matching.sort_by_key(|w| !w.viewable);
            if let Some(window) = matching.first() {
                return Ok((*window).clone());
            }
        }
        let titles: Vec<String> = windows
            .iter()
            .take(12)
            .map(|w| format!("{:?}", w.title))
            .collect();
        Err(X11Error::NotFound(format!(
            "no window named {name:?} on display {}; windows there: {}",
            self.name,
            if titles.is_empty() {
                "none".to_owned()
            } else {
                titles.join(", ")
            }
        )))
    }

    /// Monitors as RandR reports them; empty when RandR 1.5 is missing.
    pub fn monitors(&self) -> Result<Vec<MonitorInfo>, X11Error> {
        if self
            .conn
            .extension_information(x11rb::protocol::randr::X11_EXTENSION_NAME)?
            .is_none()
        {
            return Ok(Vec::new());
        }
        let version = self.conn.randr_query_version(1, 5)?.reply()?;
        if (version.major_version, version.minor_version) < (1, 5) {
            return Ok(Vec::new());
        }
        let reply = self.conn.randr_get_monitors(self.root, true)?.reply()?;
        let mut monitors = Vec::new();
        for monitor in reply.monitors {
            let name = self
                .conn
                .get_atom_name(monitor.name)?
                .reply()
                .map(|r| String::from_utf8_lossy(&r.name).into_owned())
                .unwrap_or_else(|_| "monitor".to_owned());
            monitors.push(MonitorInfo {
                name,
                primary: monitor.primary,
                rect: Rect::new(
                    monitor.x as i32,
                    monitor.y as i32,
                    monitor.width as u32,
                    monitor.height as u32,
                ),
            });
        }
        Ok(monitors)
    }
}

#[derive(Debug, Clone)]
pub struct WindowInfo {
    pub id: Window,
    pub title: String,
    pub class: Option<String>,
    pub rect: Rect,
    pub viewable: bool,
}

#[derive(Debug, Clone)]
pub struct MonitorInfo {
    pub name: String,
    pub primary: bool,
    pub rect: Rect,
}
