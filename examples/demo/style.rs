//! The demo's one stylesheet, and the Content-Security-Policy that allows exactly it.
//!
//! Narrow screens (a phone is about 390 px wide) get the same pages reflowed: the devices
//! table becomes one small card per device, and the page's buttons take the full width, so
//! nothing is wider than the screen.

use sha2::{Digest, Sha256};

/// Every page's CSS, inlined as the pages' only `<style>` element.
pub const STYLE: &str = r#"
:root { --ink:#1d2330; --muted:#667085; --line:#e4e7ec; --accent:#3056d3; --danger:#c0392b; --bg:#f6f7fb; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--ink); background:var(--bg); }
header { background:#fff; border-bottom:1px solid var(--line); padding:14px 28px; display:flex; flex-wrap:wrap; align-items:center; gap:10px; }
header .logo { width:26px; height:26px; border-radius:7px; background:linear-gradient(135deg,#3056d3,#7c4dff); }
header strong { font-size:16px; }
header nav { margin-left:auto; display:flex; gap:16px; }
header nav a { color:var(--muted); text-decoration:none; }
main { max-width:860px; margin:36px auto; padding:0 20px; }
.card { background:#fff; border:1px solid var(--line); border-radius:12px; padding:28px; box-shadow:0 1px 2px rgba(16,24,40,.05); }
.card + .card { margin-top:20px; }
h1 { font-size:22px; margin:0 0 6px; }
p.sub { color:var(--muted); margin:0 0 22px; }
label { display:block; font-weight:600; margin:14px 0 6px; }
input[type=text], input[type=password] { width:100%; max-width:360px; padding:9px 12px; border:1px solid #cfd4dc; border-radius:8px; font:inherit; }
.check { font-weight:400; display:flex; gap:8px; align-items:center; }
form { margin:0; }
button, a.button { display:inline-block; font:inherit; line-height:1.5; border:0; border-radius:8px; padding:9px 16px; cursor:pointer; background:var(--accent); color:#fff; font-weight:600; text-decoration:none; text-align:center; }
button.secondary, a.button.secondary { background:#eef1f6; color:var(--ink); }
button.danger { background:var(--danger); }
.row { display:flex; gap:10px; flex-wrap:wrap; align-items:center; margin-top:18px; }
table { width:100%; border-collapse:collapse; }
th, td { text-align:left; padding:12px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); }
td.agent { overflow-wrap:anywhere; }
.badge { display:inline-block; font-size:12px; font-weight:600; padding:2px 8px; border-radius:999px; background:#e7f6ec; color:#1e7b3c; margin-left:6px; }
.flash { padding:10px 14px; border-radius:8px; margin-bottom:16px; background:#eef4ff; color:#213e8f; }
.flash.error { background:#fdecea; color:#8e2a1f; }
.muted { color:var(--muted); font-size:13px; }
code { background:#f2f4f7; padding:1px 5px; border-radius:4px; }
@media (max-width: 640px) {
  header { padding:12px 16px; }
  main { margin:16px auto; padding:0 12px; }
  .card { padding:18px; }
  .row form, .row a.button, .row button { flex:1 1 100%; width:100%; }
  #sessions thead { display:none; }
  #sessions, #sessions tbody { display:block; }
  #sessions tr { display:grid; grid-template-columns:minmax(0,1fr) auto; column-gap:12px; padding:12px 14px; margin-bottom:12px; border:1px solid var(--line); border-radius:10px; }
  #sessions tr.this-device { border-color:#9fd3ae; }
  #sessions td { display:block; grid-column:1; padding:0; border:0; }
  #sessions td.agent { font-weight:600; margin-bottom:4px; }
  #sessions td[data-label] { color:var(--muted); font-size:13px; }
  #sessions td[data-label]::before { content:attr(data-label) ": "; }
  #sessions td.action { grid-column:2; grid-row:1 / span 4; align-self:center; }
}
"#;

/// The Content-Security-Policy for every response. The pages have no scripts and no `style=`
/// attributes; their one inline element is `<style>{STYLE}</style>`, allowed by its hash rather
/// than by `'unsafe-inline'`, so a style or script injected into a page would not apply.
pub fn content_security_policy() -> String {
    let style = base64_simd::STANDARD.encode_to_string(Sha256::digest(STYLE));
    format!(
        "default-src 'self'; style-src 'sha256-{style}'; frame-ancestors 'none'; \
         form-action 'self'; base-uri 'none'"
    )
}
