//! PNG text on one baseline: a drawing backend that wraps plotters' bitmap backend and
//! draws text itself, with ab_glyph and the embedded font, while everything else is
//! drawn by the bitmap backend.
//!
//! Why: plotters' ab_glyph text places each glyph at `(size / 2 + glyph top) as i32`,
//! and `as` cuts toward zero. At font sizes whose half is not whole (11 px, 13 px) the
//! tall glyphs (whose top is above the middle: a negative sum) move down half a pixel
//! and the low ones (`.`, `,`, `_`: a positive sum) move up half a pixel, so the
//! decimal point sits a pixel or two above the digits' baseline ("460·6"). Here every
//! glyph is placed on one whole-pixel baseline, where plotters means it to be (half the
//! font size below the top of the text's box), so the box, the anchors and therefore
//! the layout stay exactly plotters' own.
//!
//! [`write`] encodes the drawn pixels: fast deflate, one filter (Paeth) for every row
//! (plotters' encoder tried all five per row at the default level: two thirds of a
//! report's time, for files a fifth smaller). Paeth, not Up: half the bytes of Up for a
//! chart with a bar per pair (about 0.8 instead of 1.7 MB for 100 pairs) and a little faster,
//! as fast deflate has less to write.

use ab_glyph::{Font, FontRef, ScaleFont, point};
use plotters::backend::BitMapBackend;
use plotters::style::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

use crate::report::font;

/// The bitmap backend, with text drawn on one baseline.
pub struct Png<'a> {
    inner: BitMapBackend<'a>,
    font: FontRef<'static>,
    /// Each glyph's ink, by glyph and size, as drawn at a whole-pixel origin (the only
    /// kind of origin [`DrawingBackend::draw_text`] uses here): a chart's labels repeat
    /// a few dozen glyphs hundreds of times, and rasterizing an outline is most of the
    /// cost of its text.
    glyphs: std::collections::HashMap<(ab_glyph::GlyphId, u32), Option<Ink>>,
}

/// A rasterized glyph: where its box starts relative to its origin, and the coverage
/// of each pixel of it that has some.
struct Ink {
    min: (i32, i32),
    pixels: Vec<(i32, i32, f32)>,
}

impl<'a> Png<'a> {
    /// `None` only if the embedded font cannot be read (a unit test rules that out).
    pub fn new(inner: BitMapBackend<'a>) -> Option<Png<'a>> {
        Some(Png {
            inner,
            font: FontRef::try_from_slice(font::DEJAVU_SANS).ok()?,
            glyphs: std::collections::HashMap::new(),
        })
    }
}

/// A zeroed pixel buffer of `len` bytes. A chart's buffer is large (13 MB for a bar per
/// side of 100 pairs), and filled at once: as a vector it costs a page fault per 4 KiB
/// page (a third of drawing it, here); mapped with huge pages where the kernel gives
/// them (`madvise`), a fault per 2 MiB: 35 instead of 40 ms for `pairbench report` of
/// 100 trivial pairs here.
pub fn pixels(len: usize) -> std::io::Result<memmap2::MmapMut> {
    let m = memmap2::MmapOptions::new().len(len.max(1)).map_anon()?;
    // Only a hint: where the kernel has no huge pages for us it is an ordinary mapping.
    #[cfg(target_os = "linux")]
    let _ = m.advise(memmap2::Advice::HugePage);
    Ok(m)
}

/// Write `rgb` (8-bit RGB rows of `size.0` pixels) to `path` as a PNG.
pub fn write(
    path: &std::path::Path,
    rgb: &[u8],
    size: (u32, u32),
) -> std::result::Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    {
        let mut enc = ::png::Encoder::new(&mut out, size.0, size.1);
        enc.set_color(::png::ColorType::Rgb);
        enc.set_depth(::png::BitDepth::Eight);
        enc.set_compression(::png::Compression::Fast);
        enc.set_filter(::png::FilterType::Paeth);
        enc.set_adaptive_filter(::png::AdaptiveFilterType::NonAdaptive);
        let mut w = enc.write_header().map_err(|e| e.to_string())?;
        w.write_image_data(rgb).map_err(|e| e.to_string())?;
        w.finish().map_err(|e| e.to_string())?;
    }
    // Flushed here, so a failed write is seen (dropping the writer would hide it).
    out.into_inner()
        .map(drop)
        .map_err(|e| e.error().to_string())
}

type Result<E> = std::result::Result<(), DrawingErrorKind<E>>;

impl<'a> DrawingBackend for Png<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<Self::ErrorType> {
        self.inner.ensure_prepared()
    }
    fn present(&mut self) -> Result<Self::ErrorType> {
        self.inner.present()
    }
    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<Self::ErrorType> {
        self.inner.draw_pixel(point, color)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<Self::ErrorType> {
        self.inner.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<Self::ErrorType> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<Self::ErrorType> {
        self.inner.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<Self::ErrorType> {
        self.inner.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<Self::ErrorType> {
        self.inner.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<Self::ErrorType> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<Self::ErrorType> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        // The box plotters lays text out with (and anchors it by), as its own draw_text.
        let ((min_x, min_y), (max_x, max_y)) = style
            .layout_box(text)
            .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -(max_x - min_x),
            HPos::Center => -(max_x - min_x) / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -(max_y - min_y) / 2,
            VPos::Bottom => -(max_y - min_y),
        };
        let trans = style.transform();
        let (w, h) = self.get_size();
        let size = style.size() as f32;
        let font = self.font.as_scaled(size);
        let baseline = (size / 2.0).round();
        let mut x = 0f32;
        let mut prev = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                x += font.kern(p, id);
            }
            prev = Some(id);
            let origin = (x.round() as i32, baseline as i32);
            x += font.h_advance(id);
            let scaled = &font;
            let ink = self.glyphs.entry((id, size.to_bits())).or_insert_with(|| {
                let glyph = id.with_scale_and_position(size, point(0.0, 0.0));
                let outline = scaled.outline_glyph(glyph)?;
                let b = outline.px_bounds();
                let mut pixels = Vec::new();
                outline.draw(|gx, gy, coverage| {
                    if coverage > 0.0 {
                        pixels.push((gx as i32, gy as i32, coverage.min(1.0)));
                    }
                });
                Some(Ink {
                    min: (b.min.x as i32, b.min.y as i32),
                    pixels,
                })
            });
            let Some(ink) = ink else { continue };
            for &(gx, gy, coverage) in &ink.pixels {
                let (px, py) = trans.transform(
                    origin.0 + ink.min.0 + gx + dx - min_x,
                    origin.1 + ink.min.1 + gy + dy - min_y,
                );
                let (px, py) = (pos.0 + px, pos.1 + py);
                if px >= 0 && px < w as i32 && py >= 0 && py < h as i32 {
                    let shade = BackendColor {
                        alpha: color.alpha * f64::from(coverage),
                        rgb: color.rgb,
                    };
                    self.inner.draw_pixel((px, py), shade).map_err(|_| {
                        DrawingErrorKind::FontError("cannot draw a pixel of text".into())
                    })?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::prelude::*;

    /// The lowest inked row of each column run (glyph) of `text` drawn at `size`.
    fn glyph_bottoms(text: &str, size: f64) -> Vec<u32> {
        font::ensure().unwrap();
        let (w, h) = (200u32, 40u32);
        let mut buf = vec![255u8; (w * h * 3) as usize];
        {
            let png = Png::new(BitMapBackend::with_buffer(&mut buf, (w, h))).unwrap();
            let root = png.into_drawing_area();
            root.draw(&Text::new(
                text.to_string(),
                (4, 20),
                (font::FAMILY, size).into_font().color(&BLACK),
            ))
            .unwrap();
            root.present().unwrap();
        }
        let dark = |x: u32, y: u32| buf[((y * w + x) * 3) as usize] < 140;
        let mut bottoms = Vec::new();
        let mut x = 0;
        while x < w {
            if (0..h).any(|y| dark(x, y)) {
                let mut bottom = 0;
                while x < w && (0..h).any(|y| dark(x, y)) {
                    bottom = bottom.max((0..h).rev().find(|&y| dark(x, y)).unwrap());
                    x += 1;
                }
                bottoms.push(bottom);
            }
            x += 1;
        }
        bottoms
    }

    #[test]
    fn the_decimal_point_sits_on_the_digits_baseline() {
        for size in [11.0, 12.0, 13.0, 16.0] {
            let b = glyph_bottoms("460.6", size);
            assert_eq!(b.len(), 5, "{size}: {b:?}");
            assert!(
                b.iter().all(|&y| y == b[0]),
                "size {size}: glyph bottoms {b:?}"
            );
        }
    }
}
