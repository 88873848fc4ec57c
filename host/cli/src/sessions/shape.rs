//! How sessions are started over time: all at once or spread over `--ramp-up`, at a fixed `--arrival-rate`, or
//! following `--stages` of a target number running (k6's ramping VUs).

use std::time::Duration;

/// One stage of `--stages`: over `duration`, the target moves linearly from the previous stage's (0 at first) to
/// `target`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: u64,
}

/// The load shape.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// `--sessions N`, their starts spread evenly over `--ramp-up` if given.
    Ramp { sessions: u64, ramp_up: Option<Duration> },
    /// `--arrival-rate R`: a new session every 1/R s, whatever the others do; `sessions` in all.
    Arrival { sessions: u64, per_second: f64 },
    /// `--stages`: sessions are started and stopped (1001) so that the number running follows the target; one that
    /// ends by itself is replaced while the target wants it.
    Stages(Vec<Stage>),
}

impl Shape {
    /// The shape as a command line's words, for the report (shards of one run say the same).
    pub fn describe(&self) -> String {
        match self {
            Shape::Ramp { sessions, ramp_up: None } => format!("--sessions {sessions}"),
            Shape::Ramp { sessions, ramp_up: Some(ramp) } => {
                format!("--sessions {sessions} --ramp-up {}", seconds(*ramp))
            }
            Shape::Arrival { sessions, per_second } => format!("--arrival-rate {per_second}/s, {sessions} sessions"),
            Shape::Stages(stages) => {
                let stages: Vec<String> =
                    stages.iter().map(|s| format!("{}:{}", seconds(s.duration), s.target)).collect();
                format!("--stages {}", stages.join(","))
            }
        }
    }

    /// How many sessions start in all, when that is known before the run.
    pub fn sessions(&self) -> Option<u64> {
        match self {
            Shape::Ramp { sessions, .. } | Shape::Arrival { sessions, .. } => Some(*sessions),
            Shape::Stages(_) => None,
        }
    }

    /// When session `index` starts, for the shapes with fixed starts.
    pub fn start_of(&self, index: u64) -> Duration {
        match self {
            Shape::Ramp { sessions, ramp_up: Some(ramp) } if *sessions > 1 => {
                ramp.mul_f64(index as f64 / *sessions as f64)
            }
            Shape::Arrival { per_second, .. } => Duration::from_secs_f64(index as f64 / per_second),
            _ => Duration::ZERO,
        }
    }

    /// How long the stages last in all.
    pub fn end(&self) -> Option<Duration> {
        match self {
            Shape::Stages(stages) => Some(stages.iter().map(|s| s.duration).sum()),
            _ => None,
        }
    }

    /// The stages' target at `elapsed` (rounded to the nearest session).
    pub fn target_at(&self, elapsed: Duration) -> u64 {
        let Shape::Stages(stages) = self else { return 0 };
        let (mut from, mut at) = (0u64, Duration::ZERO);
        for stage in stages {
            if elapsed < at + stage.duration {
                let done = (elapsed - at).as_secs_f64() / stage.duration.as_secs_f64().max(1e-9);
                return (from as f64 + (stage.target as f64 - from as f64) * done).round() as u64;
            }
            (from, at) = (stage.target, at + stage.duration);
        }
        from
    }

    /// The most sessions running at once, for sizing the pool.
    pub fn peak(&self) -> u64 {
        match self {
            Shape::Stages(stages) => stages.iter().map(|s| s.target).max().unwrap_or(0),
            other => other.sessions().unwrap_or(0),
        }
    }
}

fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64())
}

/// `30s:100,1m:1000,30s:0`, as a shape.
pub fn parse_stages(text: &str) -> Result<Shape, String> {
    stages_of(text).map(Shape::Stages)
}

fn stages_of(text: &str) -> Result<Vec<Stage>, String> {
    let invalid = |why: String| format!("invalid --stages {text:?}: {why} (like 30s:100,1m:1000,30s:0)");
    let stages = text
        .split(',')
        .map(|stage| {
            let (duration, target) =
                stage.split_once(':').ok_or_else(|| invalid(format!("{stage:?} is not DURATION:TARGET")))?;
            let duration = crate::args::parse_duration(duration.trim()).map_err(invalid)?;
            let target =
                target.trim().parse().map_err(|_| invalid(format!("{target:?} is not a number of sessions")))?;
            Ok(Stage { duration, target })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if stages.iter().all(|s| s.target == 0) {
        return Err(invalid("every target is 0".to_owned()));
    }
    if stages.iter().map(|s| s.duration).sum::<Duration>().is_zero() {
        return Err(invalid("the stages last no time".to_owned()));
    }
    Ok(stages)
}

/// `10`, `10/s` or `600/m`: new sessions per second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let (number, per) = match text.split_once('/') {
        Some((number, "s")) => (number, 1.0),
        Some((number, "m")) => (number, 60.0),
        Some(_) => return Err(format!("invalid --arrival-rate {text:?}: say /s or /m (like 10/s)")),
        None => (text, 1.0),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => Ok(n / per),
        _ => Err(format!("invalid --arrival-rate {text:?}: a number of sessions above 0 per second (like 10/s)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_move_the_target_linearly() {
        let shape = parse_stages("10s:100,20s:100,10s:0").unwrap();
        let at = |s: f64| shape.target_at(Duration::from_secs_f64(s));
        assert_eq!([at(0.0), at(5.0), at(10.0), at(25.0), at(35.0), at(40.0), at(99.0)], [0, 50, 100, 100, 50, 0, 0]);
        assert_eq!((shape.end(), shape.peak()), (Some(Duration::from_secs(40)), 100));
        assert!(parse_stages("10s").is_err());
        assert!(parse_stages("10s:0").is_err());
        assert!(parse_stages("soon:3").is_err());
    }

    #[test]
    fn arrivals_come_at_the_rate() {
        assert_eq!(parse_rate("10/s").unwrap(), 10.0);
        assert_eq!(parse_rate("120/m").unwrap(), 2.0);
        assert!(parse_rate("0").is_err() && parse_rate("5/h").is_err());
        let shape = Shape::Arrival { sessions: 20, per_second: 4.0 };
        assert_eq!(shape.start_of(6), Duration::from_millis(1500));
    }
}
