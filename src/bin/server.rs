//! The same binary under the name `server` (`cargo run --bin server`): one `main`, in
//! src/main.rs.
include!("../main.rs");
