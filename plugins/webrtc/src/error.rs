//! What can go wrong in peersink and peersrc, and how each kind reaches
//! the application: one place maps errors to GStreamer's error domains, so
//! the bus message a pipeline sees says what failed and why.

use gst::prelude::*;

use crate::signaller::SignallerError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ElementError {
    /// A property that cannot work (bad uri, JSON, address...).
    #[error("{0}")]
    Settings(String),
    #[error(transparent)]
    Signalling(#[from] SignallerError),
    /// A WebRTC session with a peer failed.
    #[error("{0}")]
    Session(String),
    /// A GStreamer element we need is not installed.
    #[error("{0}")]
    MissingElement(String),
    /// Input caps the element cannot send.
    #[error("{0}")]
    Format(String),
    /// A thread or runtime resource could not be had.
    #[error("{0}")]
    Resource(String),
}

impl ElementError {
    fn to_glib(&self) -> gst::glib::Error {
        match self {
            ElementError::Settings(_) => {
                gst::glib::Error::new(gst::ResourceError::Settings, &self.to_string())
            }
            ElementError::Signalling(SignallerError::BadUri { .. }) => {
                gst::glib::Error::new(gst::ResourceError::Settings, &self.to_string())
            }
            ElementError::Signalling(SignallerError::ProducerAbsent { .. }) => {
                gst::glib::Error::new(gst::ResourceError::NotFound, &self.to_string())
            }
            ElementError::Signalling(_) => {
                gst::glib::Error::new(gst::ResourceError::OpenReadWrite, &self.to_string())
            }
            ElementError::Session(_) => {
                gst::glib::Error::new(gst::ResourceError::Read, &self.to_string())
            }
            ElementError::MissingElement(_) => {
                gst::glib::Error::new(gst::CoreError::MissingPlugin, &self.to_string())
            }
            ElementError::Format(_) => {
                gst::glib::Error::new(gst::StreamError::Format, &self.to_string())
            }
            ElementError::Resource(_) => {
                gst::glib::Error::new(gst::ResourceError::Failed, &self.to_string())
            }
        }
    }

    /// Posts an error message: the element cannot go on.
    pub fn post_error(&self, element: &gst::Element) {
        let message = gst::message::Error::builder_from_error(self.to_glib())
            .src(element)
            .build();
        let _ = element.post_message(message);
    }

    /// Posts a warning: something the user should know, the element goes on.
    pub fn post_warning(&self, element: &gst::Element) {
        let error = self.to_glib();
        let message = gst::message::Warning::builder_from_error(error)
            .src(element)
            .build();
        let _ = element.post_message(message);
    }
}
