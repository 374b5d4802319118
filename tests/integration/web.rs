//! The web server (to be written).
