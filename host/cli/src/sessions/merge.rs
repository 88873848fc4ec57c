//! `wsrun report merge`: the reports of a run's shards added up into the report of the whole run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::report::threshold::Threshold;
use super::report::{self, MaxFailures, Report, Shard};

/// How `wsrun report merge` is called.
pub const USAGE: &str = "usage: wsrun report merge [--report FILE] [--html FILE] [--max-failures N|P%] [--threshold EXPR]... [--partial] [--force] FILE...";

const MERGE_HELP: &str = "\
Adds up the --report files of the shards of one run (wsrun --sessions N --shard INDEX/COUNT ...): prints the
summary of the whole run, writes it as JSON with --report and as a page with --html, and exits 1 when its failures
pass --max-failures (default 0), a threshold fails (the shards' own --threshold expressions, or those given here
instead), or a shard was interrupted. Every shard must be there once; --partial merges what there is, and the
verdict then fails. Reports of different runs (another guest, URL or load) are refused; --force merges them anyway.";

/// What the command line of `report merge` asks for.
struct Asked {
    files: Vec<PathBuf>,
    report_to: Option<PathBuf>,
    html: Option<PathBuf>,
    max: Option<MaxFailures>,
    thresholds: Vec<Threshold>,
    partial: bool,
    force: bool,
}

/// `wsrun report merge ...`: `report_to`, `max`, `html` and `thresholds` as given before `report merge`.
pub fn merge(
    arguments: &[String],
    report_to: Option<&Path>,
    max: Option<MaxFailures>,
    html: Option<&Path>,
    thresholds: &[Threshold],
) -> Result<ExitCode, String> {
    let mut asked = Asked {
        files: Vec::new(),
        report_to: report_to.map(Path::to_path_buf),
        html: html.map(Path::to_path_buf),
        max,
        thresholds: thresholds.to_vec(),
        partial: false,
        force: false,
    };
    let mut rest = arguments.iter();
    while let Some(argument) = rest.next() {
        let mut value = || rest.next().ok_or(USAGE);
        match argument.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}\n\n{MERGE_HELP}");
                return Ok(ExitCode::SUCCESS);
            }
            "--report" => asked.report_to = Some(value()?.into()),
            "--html" => asked.html = Some(value()?.into()),
            "--max-failures" => asked.max = Some(MaxFailures::parse(value()?)?),
            "--threshold" => asked.thresholds.push(Threshold::parse(value()?)?),
            "--partial" => asked.partial = true,
            "--force" => asked.force = true,
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}; {USAGE}")),
            file => asked.files.push(PathBuf::from(file)),
        }
    }
    if asked.files.is_empty() {
        return Err(USAGE.to_owned());
    }
    let mut merged = merged(&asked)?;
    if !asked.thresholds.is_empty() {
        merged.thresholds = asked.thresholds.clone();
    }
    super::finish(
        &merged,
        asked.max.unwrap_or(MaxFailures::Count(0)),
        asked.report_to.as_deref(),
        asked.html.as_deref(),
    )
}

fn merged(asked: &Asked) -> Result<Report, String> {
    let mut merged: Option<(Report, &Path)> = None;
    let mut shards = report::ShardSet::default();
    let mut whole_runs = Vec::new();
    for file in &asked.files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let report = Report::from_json(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        if report.shard == Shard::WHOLE {
            whole_runs.push(file.display().to_string());
        }
        if !asked.force {
            if whole_runs.len() > 1 {
                return Err(format!(
                    "{} are each a whole run, not shards of one (--shard INDEX/COUNT): merging runs needs --force",
                    whole_runs.join(" and ")
                ));
            }
            shards.add(report.shard).map_err(|e| format!("{}: {e}", file.display()))?;
        }
        match &mut merged {
            Some((merged, first)) => {
                if let Some(difference) = merged.differs_from(&report) {
                    let message = format!(
                        "{} and {} are reports of different runs ({difference})",
                        first.display(),
                        file.display()
                    );
                    match asked.force {
                        true => eprintln!("wsrun: warning: {message}: merged anyway (--force)"),
                        false => return Err(format!("{message}; merge them anyway with --force")),
                    }
                }
                merged.merge(&report).map_err(|e| format!("{}: {e}", file.display()))?;
            }
            None => merged = Some((Report { shard: Shard::WHOLE, ..report }, file)),
        }
    }
    let (mut merged, _) = merged.expect("at least one file");
    if let Some(missing) = shards.missing() {
        if !asked.partial {
            return Err(format!("{missing}; merge what there is with --partial (the verdict then fails)"));
        }
        eprintln!("wsrun: warning: {missing}: the merged report covers part of the run");
        merged.interrupted = true;
    }
    Ok(merged)
}
