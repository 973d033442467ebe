//! The design system's components. Styling lives in `style/main.css` (plain CSS, custom
//! properties); these components add the structure and accessibility (labels, roles, keyboard) so
//! every page gets them right by default. `/design` shows each one.

pub mod badge;
pub mod dialog;
pub mod download;
pub mod field;
pub mod format;
pub mod live;
pub mod page;
pub mod steps;
pub mod tabs;
pub mod toast;
