//! The font that plots are drawn with: DejaVu Sans, embedded in the binary and registered
//! with plotters' ab_glyph support, so PNG text renders on machines with no fonts at all
//! (the SVG backend writes `<text>` elements and needs no font file to draw).

use std::sync::OnceLock;

use plotters::style::FontStyle;

/// DejaVu Sans 2.37 (Bitstream Vera licence; see assets/fonts/LICENSE-DejaVu).
pub(crate) static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family name plots use for all their text.
pub const FAMILY: &str = "sans-serif";

/// Register the embedded font (once per process). Fails only if the embedded bytes are not
/// a font, which a unit test rules out.
pub fn ensure() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font(FAMILY, style, DEJAVU_SANS)
                .map_err(|_| "the embedded DejaVu Sans font could not be loaded".to_string())?;
        }
        Ok(())
    })
    .clone()
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_font_registers() {
        assert_eq!(super::ensure(), Ok(()));
    }
}
