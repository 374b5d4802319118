//! The built-in browser (to be written).
