//! Prints a fresh session key as base64, for `SESSION_KEY` or a key file.
//!
//! `cargo run --example keygen`

use sealed_sessions::Key;

fn main() {
    let key = Key::generate();
    eprintln!(
        "key id {} (public; appears in every cookie this key seals)",
        key.id()
    );
    println!("{}", key.to_base64());
}
