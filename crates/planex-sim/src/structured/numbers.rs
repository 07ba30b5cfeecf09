//! Numbers: `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` and `multipleOf` read
//! into [`Bounds`] (refused when no value fits), and a value drawn within them.
//!
//! Key decision: a `multipleOf` is kept as a decimal (mantissa and decimal places) and every
//! multiple is built as `k * mantissa / 10^places`, so `multipleOf: 0.1` yields `0.3`, which a
//! validator dividing decimals accepts, never `0.30000000000000004`.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Number, Value, json};

use super::error::SchemaError;

/// How far the generator reaches past the one bound a schema gives (or from 0 with none).
const OPEN_SPAN: f64 = 100.0;
/// The largest integer an f64 holds exactly (2^53 - 1).
const SAFE: f64 = 9_007_199_254_740_991.0;

/// A `multipleOf` as a decimal: `mantissa / 10^places`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    mantissa: i64,
    places: u32,
}

impl Step {
    fn of(value: f64) -> Option<Step> {
        let text = format!("{value}");
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        let places = u32::try_from(fraction.len()).ok()?;
        let mantissa: i64 = format!("{whole}{fraction}").parse().ok()?;
        (mantissa > 0 && places <= 15).then_some(Step { mantissa, places })
    }

    fn value(self, k: i64) -> f64 {
        (k as f64) * (self.mantissa as f64) / 10f64.powi(self.places as i32)
    }

    /// The stride of `k` whose multiples are whole numbers (1 for a whole step).
    fn whole_stride(self) -> i64 {
        let scale = 10i64.pow(self.places);
        scale / gcd(self.mantissa, scale)
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs().max(1)
    } else {
        gcd(b, a % b)
    }
}

/// The values a number or integer schema allows.
#[derive(Clone, Debug)]
pub struct Bounds {
    lo: f64,
    hi: f64,
    lo_open: bool,
    hi_open: bool,
    integer: bool,
    step: Option<Step>,
    /// For a step: the range of `k` (aligned to the whole stride for integers).
    k: (i64, i64),
    stride: i64,
}

fn number(map: &Map<String, Value>, path: &str, key: &str) -> Result<Option<f64>, SchemaError> {
    match map.get(key) {
        None => Ok(None),
        Some(value) => value
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| SchemaError::new(path, key, "must be a finite number")),
    }
}

/// The tighter of a closed and an open bound; `above` picks the larger (lower bounds).
fn tighter(closed: Option<f64>, open: Option<f64>, above: bool) -> Option<(f64, bool)> {
    match (closed, open) {
        (Some(c), Some(o)) if (o >= c) == above || o == c => Some((o, true)),
        (Some(c), _) => Some((c, false)),
        (None, Some(o)) => Some((o, true)),
        (None, None) => None,
    }
}

impl Bounds {
    /// Reads the numeric keywords of `map` (the schema at `path`) for an `integer` or number.
    pub fn read(
        map: &Map<String, Value>,
        path: &str,
        integer: bool,
    ) -> Result<Bounds, SchemaError> {
        let lower = tighter(
            number(map, path, "minimum")?,
            number(map, path, "exclusiveMinimum")?,
            true,
        );
        let upper = tighter(
            number(map, path, "maximum")?,
            number(map, path, "exclusiveMaximum")?,
            false,
        );
        let ((mut lo, mut lo_open), (mut hi, mut hi_open)) = match (lower, upper) {
            (Some(l), Some(u)) => (l, u),
            (Some(l), None) => (l, (l.0 + OPEN_SPAN, false)),
            (None, Some(u)) => ((u.0 - OPEN_SPAN, false), u),
            (None, None) => ((0.0, false), (OPEN_SPAN, false)),
        };
        let empty = || SchemaError::new(path, "minimum", "leaves no value up to the maximum");
        if integer {
            lo = if lo_open { lo.floor() + 1.0 } else { lo.ceil() }.max(-SAFE);
            hi = if hi_open { hi.ceil() - 1.0 } else { hi.floor() }.min(SAFE);
            (lo_open, hi_open) = (false, false);
        }
        if lo > hi || (lo == hi && (lo_open || hi_open)) {
            return Err(empty());
        }
        let mut bounds = Bounds {
            lo,
            hi,
            lo_open,
            hi_open,
            integer,
            step: None,
            k: (0, 0),
            stride: 1,
        };
        if let Some(step) = number(map, path, "multipleOf")? {
            let step = Step::of(step).filter(|_| step > 0.0).ok_or_else(|| {
                SchemaError::new(
                    path,
                    "multipleOf",
                    "must be a positive number with at most 15 decimal places",
                )
            })?;
            bounds.set_step(step).ok_or_else(|| {
                SchemaError::new(path, "multipleOf", "has no multiple between the bounds")
            })?;
        }
        Ok(bounds)
    }

    fn contains(&self, v: f64) -> bool {
        let above = if self.lo_open {
            v > self.lo
        } else {
            v >= self.lo
        };
        let below = if self.hi_open {
            v < self.hi
        } else {
            v <= self.hi
        };
        above && below
    }

    /// Finds the `k` range of `step` inside the bounds; `None` when it is empty.
    fn set_step(&mut self, step: Step) -> Option<()> {
        let unit = step.value(1);
        let (first, last) = ((self.lo / unit).ceil(), (self.hi / unit).floor());
        if !(first.abs() <= SAFE && last.abs() <= SAFE) {
            return None;
        }
        let (mut first, mut last) = (first as i64, last as i64);
        // Float division may land one off; step inward/outward until the ends are exact.
        while !self.contains(step.value(first)) && first <= last {
            first += 1;
        }
        while first > i64::MIN && self.contains(step.value(first - 1)) {
            first -= 1;
        }
        while !self.contains(step.value(last)) && last >= first {
            last -= 1;
        }
        let stride = if self.integer { step.whole_stride() } else { 1 };
        let first = first.checked_add((stride - first.rem_euclid(stride)) % stride)?;
        let last = last.checked_sub(last.rem_euclid(stride))?;
        if first > last || !self.contains(step.value(first)) {
            return None;
        }
        self.step = Some(step);
        self.k = (first, last);
        self.stride = stride;
        Some(())
    }

    /// A value within the bounds (the smallest when `minimal`).
    pub fn draw(&self, rng: &mut ChaCha8Rng, minimal: bool) -> Value {
        if let Some(step) = self.step {
            let (first, last) = self.k;
            let count = (last - first) / self.stride;
            let i = if minimal {
                0
            } else {
                rng.random_range(0..=count)
            };
            let v = step.value(first + i * self.stride);
            return if self.integer {
                json!(v as i64)
            } else {
                Number::from_f64(v).map_or(json!(0), Value::Number)
            };
        }
        if self.integer {
            let (lo, hi) = (self.lo as i64, self.hi as i64);
            return json!(if minimal {
                lo
            } else {
                rng.random_range(lo..=hi)
            });
        }
        let t = if minimal {
            0.5
        } else {
            f64::from(rng.random_range(0..=100u8)) / 100.0
        };
        let raw = self.lo + t * (self.hi - self.lo);
        let rounded = (raw * 100.0).round() / 100.0;
        let middle = self.lo + (self.hi - self.lo) / 2.0;
        let v = [rounded, raw, middle]
            .into_iter()
            .find(|v| self.contains(*v))
            .unwrap_or(self.lo);
        Number::from_f64(v).map_or(json!(0), Value::Number)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use rand::SeedableRng;

    fn bounds(schema: Value, integer: bool) -> Result<Bounds, SchemaError> {
        Bounds::read(schema.as_object().unwrap(), "#", integer)
    }

    #[test]
    fn draws_stay_inside_and_on_the_step() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let tenth = bounds(
            json!({"minimum": 0.2, "exclusiveMaximum": 0.5, "multipleOf": 0.1}),
            false,
        )
        .unwrap();
        let halves = bounds(
            json!({"exclusiveMinimum": 1, "maximum": 4, "multipleOf": 0.5}),
            true,
        )
        .unwrap();
        let open = bounds(json!({"exclusiveMinimum": 0, "exclusiveMaximum": 1}), false).unwrap();
        for _ in 0..100 {
            let v = tenth.draw(&mut rng, false).as_f64().unwrap();
            assert!(
                ["0.2", "0.3", "0.4"].contains(&v.to_string().as_str()),
                "{v}"
            );
            let v = halves.draw(&mut rng, false);
            assert!([json!(2), json!(3), json!(4)].contains(&v), "{v}");
            let v = open.draw(&mut rng, false).as_f64().unwrap();
            assert!(v > 0.0 && v < 1.0, "{v}");
        }
    }

    #[test]
    fn empty_ranges_are_refused() {
        assert!(bounds(json!({"minimum": 3, "maximum": 2}), false).is_err());
        assert!(bounds(json!({"exclusiveMinimum": 2, "exclusiveMaximum": 3}), true).is_err());
        assert!(
            bounds(
                json!({"minimum": 1, "maximum": 1.9, "multipleOf": 2}),
                false
            )
            .is_err()
        );
        assert!(bounds(json!({"multipleOf": 0}), false).is_err());
        assert!(bounds(json!({"minimum": "1"}), false).is_err());
        assert!(bounds(json!({"minimum": 5, "maximum": 5}), true).is_ok());
    }
}
