//! Tools the report tests use: external programs that must exist in CI (xmllint,
//! chromium) but may be skipped loudly elsewhere, a headless browser run with a time
//! limit that leaves nothing behind, PNG decoding, and link decoding.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `name` on PATH; otherwise `None` after a loud skip line, or a panic in CI
/// (PAIRBENCH_REQUIRE_SSHD=1), naming the apt package to install.
pub fn tool(name: &str, apt_package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_some() {
        return found;
    }
    if std::env::var("PAIRBENCH_REQUIRE_SSHD").as_deref() == Ok("1") {
        panic!(
            "`{name}` is required when PAIRBENCH_REQUIRE_SSHD=1 (CI) but is not on PATH: apt-get install -y {apt_package}"
        );
    }
    // Straight to the terminal (not captured by the test harness), so the skip is seen.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: `{name}` is not installed, so this test checks less than it should. Install it: apt-get install -y {apt_package} ***\n"
    );
    None
}

/// Run `cmd` in its own process group with a time limit; whatever it leaves in that
/// group is killed afterwards. Panics on timeout.
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("out file"))
        .stderr(std::fs::File::create(&err_path).expect("err file"))
        .process_group(0)
        .spawn();
    let mut child = child.unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let end = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if Instant::now() > end {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let status = match status {
        Some(s) => s,
        None => {
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    }
}

/// Headless Chromium on `url` with `extra` arguments (`--dump-dom`, `--screenshot=...`),
/// with a fresh profile and nothing that talks to the network on its own.
pub fn chromium(bin: &Path, url: &str, extra: &[&str]) -> Output {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1280,2000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(url)
    .env("HOME", profile.path());
    run_bounded(cmd, Duration::from_secs(180))
}

/// The browser console lines of a Chromium log (CSP violations, script errors, ...).
pub fn console_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect()
}

/// A decoded PNG: width, height and RGBA pixels.
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

impl Image {
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        let i = ((y * self.width + x) * 4) as usize;
        [
            self.rgba[i],
            self.rgba[i + 1],
            self.rgba[i + 2],
            self.rgba[i + 3],
        ]
    }
    /// Pixels in the rectangle that are darker than light grey.
    pub fn dark_pixels(&self, x0: u32, y0: u32, x1: u32, y1: u32) -> usize {
        let mut n = 0;
        for y in y0..y1.min(self.height) {
            for x in x0..x1.min(self.width) {
                let [r, g, b, _] = self.pixel(x, y);
                if (r as u32 + g as u32 + b as u32) < 3 * 160 {
                    n += 1;
                }
            }
        }
        n
    }
    /// How many different colours the image has.
    pub fn colours(&self) -> usize {
        let mut set = std::collections::HashSet::new();
        for p in self.rgba.chunks(4) {
            set.insert([p[0], p[1], p[2]]);
        }
        set.len()
    }
}

pub fn read_png(path: &Path) -> Image {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .unwrap_or_else(|e| panic!("{}: not a PNG: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    buf.truncate(info.buffer_size());
    let rgba = match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        png::ColorType::GrayscaleAlpha => buf
            .chunks(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        other => panic!("{}: unexpected colour type {other:?}", path.display()),
    };
    Image {
        width: info.width,
        height: info.height,
        rgba,
    }
}

/// Undo percent-encoding (bytes, then UTF-8).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).expect("hex after %"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8 link")
}

/// Every `href="..."` and `src="..."` value of an HTML page, HTML entities undone.
pub fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            let after = &rest[i + attr.len()..];
            let end = after.find('"').expect("closing quote");
            out.push(after[..end].replace("&amp;", "&"));
            rest = &after[end..];
        }
    }
    out
}
