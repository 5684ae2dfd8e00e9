//! Errors a user can cause (bad flags, bad files): printed as advice, exit code 2, before work starts.

use std::fmt;

/// Exit code for bad input.
pub const EXIT_USAGE: i32 = 2;
/// Exit code after SIGINT or SIGTERM (128 + 2, as shells report Ctrl-C).
pub const EXIT_INTERRUPTED: i32 = 130;

/// A mistake in what the user asked for; the message says what to do instead.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageError(pub String);

impl UsageError {
    pub fn new(message: impl Into<String>) -> Self {
        UsageError(message.into())
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Returns a `UsageError` from the enclosing function.
#[macro_export]
macro_rules! usage_bail {
    ($($arg:tt)*) => { return Err($crate::error::UsageError::new(format!($($arg)*)).into()) };
}
