//! `--shard INDEX/COUNT`, or the index a Kubernetes Indexed Job gives each pod.

use super::Shard;

/// The shard from `--shard`, else from `JOB_COMPLETION_INDEX` (set by Kubernetes in an Indexed Job's pods) and
/// `WSRUN_SHARD_COUNT` (the Job's completions, set in its manifest), else the whole run.
pub fn shard_from(flag: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
    if let Some(text) = flag {
        return parse(text).map_err(|why| format!("invalid --shard {text:?}: {why}"));
    }
    let Some(index) = env("JOB_COMPLETION_INDEX") else {
        if env("WSRUN_SHARD_COUNT").is_some() {
            // Every pod of a Job that is not Indexed would run the whole load.
            return Err(
                "WSRUN_SHARD_COUNT is set but JOB_COMPLETION_INDEX is not (a Kubernetes Indexed Job sets it): \
                        pass --shard INDEX/COUNT"
                    .to_owned(),
            );
        }
        return Ok(Shard::WHOLE);
    };
    let count = env("WSRUN_SHARD_COUNT").ok_or(
        "JOB_COMPLETION_INDEX is set but WSRUN_SHARD_COUNT is not: set it to the Job's completions, or pass --shard INDEX/COUNT",
    )?;
    parse(&format!("{index}/{count}"))
        .map_err(|why| format!("invalid shard from JOB_COMPLETION_INDEX={index} and WSRUN_SHARD_COUNT={count}: {why}"))
}

fn parse(text: &str) -> Result<Shard, String> {
    let (index, count) = text.split_once('/').ok_or("expected INDEX/COUNT, like 0/4")?;
    let index: u32 = index.trim().parse().map_err(|_| "INDEX is not a number")?;
    let count: u32 = count.trim().parse().map_err(|_| "COUNT is not a number")?;
    if count == 0 || index >= count {
        return Err(format!("INDEX counts from 0 and must be below COUNT ({count})"));
    }
    Ok(Shard { index, count })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_then_environment_then_whole() {
        let none = |_: &str| None;
        let job = |name: &str| match name {
            "JOB_COMPLETION_INDEX" => Some("2".to_owned()),
            "WSRUN_SHARD_COUNT" => Some("4".to_owned()),
            _ => None,
        };
        assert_eq!(shard_from(Some("1/3"), job).unwrap(), Shard { index: 1, count: 3 });
        assert_eq!(shard_from(None, job).unwrap(), Shard { index: 2, count: 4 });
        assert_eq!(shard_from(None, none).unwrap(), Shard::WHOLE);
        assert!(shard_from(None, |n: &str| (n == "JOB_COMPLETION_INDEX").then(|| "0".to_owned())).is_err());
        assert!(shard_from(Some("4/4"), none).is_err());
        assert!(shard_from(Some("x"), none).is_err());
        assert!(shard_from(None, |n: &str| (n == "WSRUN_SHARD_COUNT").then(|| "4".to_owned())).is_err());
    }
}
