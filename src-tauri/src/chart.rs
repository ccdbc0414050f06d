//! The cost-comparison chart, drawn in Rust with plotters as SVG text the page inlines.
//!
//! One row per candidate, an on-demand bar and (when the offer has one) a spot bar, coloured by
//! cloud. The font is compiled in and registered once, because plotters needs a font even for
//! SVG and a fresh machine may have none. This module ranks nothing: rows are drawn in the order
//! given.

use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;
use serde::{Deserialize, Serialize};
use sky_core::{CloudId, ErrorCode};

use crate::error::UiError;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER_FONT: Once = Once::new();
const MAX_ROWS: usize = 40;

/// One candidate's prices in dollars per hour for the whole cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceBar {
    pub cloud: CloudId,
    pub label: String,
    pub on_demand: f64,
    pub spot: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("no candidates to draw")]
    Empty,
    #[error("at most {MAX_ROWS} candidates can be drawn, got {0}")]
    TooMany(usize),
    #[error("candidate '{label}': {field} must be a finite, non-negative $/h, got {value}")]
    BadPrice {
        label: String,
        field: &'static str,
        value: f64,
    },
    #[error("drawing failed: {0}")]
    Draw(String),
}

impl From<ChartError> for UiError {
    fn from(e: ChartError) -> Self {
        let code = match e {
            ChartError::Draw(_) => ErrorCode::Internal,
            _ => ErrorCode::InvalidConfig,
        };
        UiError::new(code, e.to_string())
    }
}

pub(crate) fn ensure_font() {
    REGISTER_FONT.call_once(|| {
        // The bytes are compiled in and known good; a failure would show as a Draw error below.
        if plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            tracing::error!("embedded chart font rejected");
        }
    });
}

fn cloud_colour(cloud: CloudId) -> RGBColor {
    match cloud {
        CloudId::Aws => RGBColor(0xf5, 0x9e, 0x0b),
        CloudId::Gcp => RGBColor(0x3b, 0x82, 0xf6),
        CloudId::Azure => RGBColor(0x8b, 0x5c, 0xf6),
        CloudId::Local => RGBColor(0x64, 0x74, 0x8b),
        CloudId::Ssh => RGBColor(0x10, 0xb9, 0x81),
    }
}

fn check(bars: &[PriceBar]) -> Result<f64, ChartError> {
    if bars.is_empty() {
        return Err(ChartError::Empty);
    }
    if bars.len() > MAX_ROWS {
        return Err(ChartError::TooMany(bars.len()));
    }
    let mut max = 0.0_f64;
    for b in bars {
        for (field, value) in [("on_demand", Some(b.on_demand)), ("spot", b.spot)] {
            let Some(value) = value else { continue };
            if !value.is_finite() || value < 0.0 {
                return Err(ChartError::BadPrice {
                    label: b.label.clone(),
                    field,
                    value,
                });
            }
            max = max.max(value);
        }
    }
    Ok(if max > 0.0 { max } else { 1.0 })
}

/// Draws the chart; the SVG is sized for the page (width 760, 34 px per row).
pub fn price_chart(bars: &[PriceBar]) -> Result<String, ChartError> {
    let max = check(bars)?;
    ensure_font();
    let rows = bars.len();
    let height = 90 + 34 * rows as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, height)).into_drawing_area();
        draw(&root, bars, max).map_err(|e| ChartError::Draw(e.to_string()))?;
        root.present()
            .map_err(|e| ChartError::Draw(e.to_string()))?;
    }
    Ok(svg)
}

type DrawResult =
    Result<(), DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>>;

fn draw(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    bars: &[PriceBar],
    max: f64,
) -> DrawResult {
    root.fill(&WHITE)?;
    let rows = bars.len() as f64;
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .caption(
            "$/hour: on-demand (solid) vs spot (light)",
            ("sans-serif", 16),
        )
        .x_label_area_size(30)
        .y_label_area_size(230)
        .build_cartesian_2d(0.0..max * 1.12, rows..0.0)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len() * 2 + 1)
        .y_label_formatter(&|y| {
            let i = y.floor();
            // Label only the row centres, which fall on i + 0.5.
            if (y - i - 0.5).abs() < 0.01 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_label_formatter(&|x| format!("${x:.2}"))
        .label_style(("sans-serif", 12))
        .draw()?;
    for (i, b) in bars.iter().enumerate() {
        let top = i as f64 + 0.12;
        let colour = cloud_colour(b.cloud);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, top), (b.on_demand, top + 0.38)],
            colour.filled(),
        )))?;
        if let Some(spot) = b.spot {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, top + 0.38), (spot, top + 0.76)],
                colour.mix(0.4).filled(),
            )))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(cloud: CloudId, label: &str, on_demand: f64, spot: Option<f64>) -> PriceBar {
        PriceBar {
            cloud,
            label: label.into(),
            on_demand,
            spot,
        }
    }

    #[test]
    fn draws_every_candidate_label_and_bar() {
        let bars = [
            bar(
                CloudId::Gcp,
                "gcp n2-standard-8 us-central1",
                0.39,
                Some(0.09),
            ),
            bar(CloudId::Aws, "aws m6i.2xlarge us-east-1", 0.384, None),
        ];
        let svg = price_chart(&bars).expect("chart");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("gcp n2-standard-8 us-central1"));
        assert!(svg.contains("aws m6i.2xlarge us-east-1"));
        // GCP: an on-demand and a spot bar; AWS: on-demand only, having no spot price.
        assert_eq!(svg.matches(r##"fill="#3B82F6""##).count(), 2, "{svg}");
        assert_eq!(svg.matches(r##"fill="#F59E0B""##).count(), 1, "{svg}");
    }

    #[test]
    fn rejects_bad_input_with_the_field_named() {
        assert_eq!(
            price_chart(&[]).expect_err("empty").to_string(),
            "no candidates to draw"
        );
        let err = price_chart(&[bar(CloudId::Aws, "x", f64::NAN, None)]).expect_err("nan");
        assert_eq!(
            err.to_string(),
            "candidate 'x': on_demand must be a finite, non-negative $/h, got NaN"
        );
        let many = vec![bar(CloudId::Aws, "x", 1.0, None); MAX_ROWS + 1];
        assert_eq!(
            price_chart(&many).expect_err("many").to_string(),
            "at most 40 candidates can be drawn, got 41"
        );
    }
}
